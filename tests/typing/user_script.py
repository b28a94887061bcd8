"""A user's script under `mypy --strict` (tests/test_lint.py): fit and predict with the estimators,
train a GRUModel step by step with an optimizer, step a layer's optimizer by hand. It runs as well
(the test checks that too), so what it type-checks is real use."""

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

import fastgru

rng = np.random.default_rng(0)
X: npt.NDArray[np.float32] = rng.standard_normal((16, 6, 3)).astype(np.float32)
y = X[:, -2:, 0].sum(axis=1)
labels = (y > 0).astype(np.int64)

regressor = fastgru.GRURegressor(hidden_size=8, epochs=1, batch_size=8, random_state=0).fit(X, y)
predicted = regressor.predict(X)
classifier = fastgru.GRUClassifier(hidden_size=8, epochs=1, batch_size=8, random_state=0).fit(X, labels)
classes = classifier.predict(X)
probabilities = classifier.predict_proba(X)
accuracy = classifier.score(X, labels)

model = fastgru.GRUModel(3, 8, 1, return_sequences=False, seed=0)
optimizer = fastgru.Adam(model, lr=1e-2)
report = model.train_step(X, y[:, None], optimizer, clip_grad_norm=1.0)
outputs = model.eval()(X)

layer = fastgru.GRU(3, 8, seed=0)
layer_optimizer = fastgru.Adam(layer, lr=1e-3, decoupled_weight_decay=True, weight_decay=0.01)
sequence, h_n = layer(X.transpose(1, 0, 2))
dx, dh0 = layer.backward(np.ones_like(sequence))
layer_optimizer.step()
layer_optimizer.zero_grad()
steps_taken: int = layer_optimizer.step_count

if TYPE_CHECKING:
    reveal_type(predicted)
    reveal_type(classes)
    reveal_type(probabilities)
    reveal_type(outputs)
    reveal_type(dx)
    reveal_type(report.loss)
    reveal_type(accuracy)
