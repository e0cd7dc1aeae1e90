"""XLA helpers: what makes the models fast and reproducible on XLA:CPU.

- ``conv``: small convolutions as dots; ``depthwise``: depthwise convolutions as shifted multiply-adds;
- ``options``: the XLA:CPU flags that keep results the same across hosts;
- ``compile_cache``: the persistent compilation cache, per user and per CPU;
- ``malloc``: glibc's malloc set up for XLA:CPU in a verb's process (fewer arenas; huge pages for training).
"""
