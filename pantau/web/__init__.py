"""The live monitoring page served by ``pantau web run`` (and ``pantau up``)."""
