"""Show the course's own code inside a notebook, so the notebook never keeps a second copy of it."""

import inspect


def show(obj) -> None:
    """Display the syntax-highlighted source of a helpers function or class (printed outside Jupyter).

    It displays rather than returns, so several calls in one cell all show.
    """
    code = inspect.getsource(obj)
    try:
        from IPython import get_ipython
        from IPython.display import Code, display
    except ImportError:
        print(code)
        return
    if get_ipython() is None:
        print(code)
    else:
        display(Code(code, language="python"))
