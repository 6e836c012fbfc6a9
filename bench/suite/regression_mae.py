"""Predict disease progression (scikit-learn's diabetes set) with a small MLP; judged by MAE."""
import keras
from keras.layers import Dense
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

keras.utils.set_random_seed(0)

x, y = load_diabetes(return_X_y=True)  # features already centred and scaled
x_train, x_test, y_train, y_test = train_test_split(
    x.astype("float32"), y.astype("float32"), test_size=0.2, random_state=0
)

model = keras.Sequential([keras.Input(shape=(10,)), Dense(4, activation="relu"), Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(learning_rate=0.01), loss="mse", metrics=["mae"])
model.fit(x_train, y_train, epochs=20, batch_size=32, validation_split=0.1, verbose=2)

results = model.evaluate(x_test, y_test, verbose=0, return_dict=True)
print(f"test mae: {results['mae']:.2f}")
