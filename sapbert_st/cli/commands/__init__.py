"""One module per ``sapbert-st`` command: its arguments (``add_parser``) and what it does
(``cmd_<name>``), in the order ``sapbert-st --help`` lists them."""

from sapbert_st.cli.commands import annotate, evaluate, index, link, quickstart, serve, train

COMMANDS = (quickstart, train, evaluate, index, link, annotate, serve)

__all__ = ["COMMANDS"]
