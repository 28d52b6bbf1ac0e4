"""One module per ``sapbert-st`` command: its arguments (``add_parser``) and what it does
(``cmd_<name>``), in the order ``sapbert-st --help`` lists them."""

from sapbert_st.cli.commands import evaluate, index, link, quickstart, train, train_reranker

COMMANDS = (quickstart, train, evaluate, index, link, train_reranker)

__all__ = ["COMMANDS"]
