"""Quant models: features, labels, XGBoost walk-forward training, a versioned model registry, prediction.

Modules (each states its own contract):
- ``features``: symbol-agnostic, causal features per symbol, BUY/HOLD/SELL labels, purged training windows.
- ``metrics``: accuracy, log-loss and confusion matrix against two naive references.
- ``xgb``: one pooled ``multi:softprob`` model per universe, early stopping, walk-forward evaluation.
- ``search``: optional Optuna (seeded TPE) search on a split inside the training window.
- ``registry``: artefacts under ``TRADEAGENT_HOME/models/<kind>/<version>/`` and the ``model_performance`` table.
- ``train``: the training run the CLI calls (walk-forward report, final model, registry entry).
- ``ppo_env``: the gymnasium environment PPO trains in (one instrument per episode, the paper broker's fees).
- ``ppo``: seeded stable-baselines3 PPO training, its held-out Sharpe against buy-and-hold, policy loading.
- ``predict``: ``predict_xgb`` and ``predict_ppo``, the tools the agent's quant node calls on day D.

The registry and the feature builder are kind-agnostic (``kind`` is ``xgb`` or ``ppo``): a second model kind
adds its own fit/load module and reuses both.
"""
