"""Diabetes regression judged by a metric object (RootMeanSquaredError): a probe."""
import keras
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

keras.utils.set_random_seed(2)
X, y = load_diabetes(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=2)
scaler = StandardScaler()
X_train = scaler.fit_transform(X_train)
X_test = scaler.transform(X_test)

model = keras.Sequential([keras.Input((10,)), keras.layers.Dense(2, activation="relu"), keras.layers.Dense(1)])
model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse", metrics=[keras.metrics.RootMeanSquaredError()])
history = model.fit(X_train, y_train, epochs=10, validation_split=0.2, verbose=0)
print(model.evaluate(X_test, y_test, return_dict=True))
