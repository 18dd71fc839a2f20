"""Show the course's own code inside a notebook, so the notebook never keeps a second copy of it."""

import inspect


def show(obj):
    """Syntax-highlighted source of a helpers function or class (plain text outside Jupyter)."""
    code = inspect.getsource(obj)
    try:
        from IPython.display import Code
    except ImportError:
        return code
    return Code(code, language="python")
