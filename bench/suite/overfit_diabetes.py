"""Disease progression (scikit-learn's diabetes set) from a wide, deep MLP trained for long: it
learns the 318 training patients by heart and predicts new ones badly. Judged by MAE."""
import keras
from keras import layers
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

x, y = load_diabetes(return_X_y=True)  # features already centred and scaled
x_train, x_test, y_train, y_test = train_test_split(
    x.astype("float32"), y.astype("float32"), test_size=0.2, random_state=0
)

model = keras.Sequential([
    keras.Input(shape=(10,)),
    layers.Dense(512, activation="relu"),
    layers.Dense(512, activation="relu"),
    layers.Dense(512, activation="relu"),
    layers.Dense(1),
])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
model.fit(x_train, y_train, epochs=100, batch_size=16, validation_split=0.1, verbose=2)

results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(f"test mae: {results['mae']:.2f}")
