"""Evaluation: EM/F1 with the SQuAD and MLQA normalisations, PyTorch predictions, stability across runs."""
