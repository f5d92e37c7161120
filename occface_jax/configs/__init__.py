"""One ``get_config(variant)`` file per stage (``fit``, ``data``, ``mask``, ...), packaged so that a
non-editable install loads them too: ``occface_jax.config.load_config(name, variant)``."""
