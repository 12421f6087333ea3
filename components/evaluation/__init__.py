"""The Evaluator: its TFMA EvalConfig and blessing thresholds (`eval_config`), the rating and
ranking metrics, and the slices."""
