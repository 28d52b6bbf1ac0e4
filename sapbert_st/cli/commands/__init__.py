"""One module per ``sapbert-st`` command: its arguments (``add_parser``) and what it does
(``cmd_<name>``), in the order ``sapbert-st --help`` lists them."""

from sapbert_st.cli.commands import (
    annotate,
    evaluate,
    index,
    link,
    quickstart,
    serve,
    train,
    train_reranker,
)

COMMANDS = (quickstart, train, evaluate, index, link, train_reranker, annotate, serve)

__all__ = ["COMMANDS"]
