"""What keeps a command's files whole: path checks, atomic writes, one run per output, and clean
stops on signals.
"""
