"""BPF object formats, read and written: ELF (elf.py, reader.py) and BTF (btf.py).

A leaf: it imports nothing of pyfd but the ABI numbers and the instruction
set, so the compiler, the runtime, the llvm backend and `pyfd disasm` share
one implementation. Import the module you need; this package imports none of
them, so writing an object never loads pyelftools, which only reader.py needs.
"""
