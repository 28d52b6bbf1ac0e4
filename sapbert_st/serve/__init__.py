"""The linking service: a FastAPI app over a :class:`~sapbert_st.linking.Linker`.

Modules, bottom up: ``limits`` (:class:`ServeLimits`: what one request may ask for, and
the JSON error past a limit), ``batcher`` (:class:`MicroBatcher`: concurrent requests in
one encoder call), ``body`` (the bounded, timed read of a request body and its JSON),
``schemas`` (the request and response models of the OpenAPI docs), ``health`` (what
``GET /health`` reports) and ``app`` (:func:`create_app`). ``sapbert-st serve`` runs the
app with uvicorn. Needs ``pip install "sapbert-st[serve]"`` (FastAPI and uvicorn).
"""

from typing import TYPE_CHECKING

from sapbert_st.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from sapbert_st.serve.app import create_app
    from sapbert_st.serve.batcher import MicroBatcher, QueueFullError
    from sapbert_st.serve.limits import RequestError, ServeLimits

__all__ = ["MicroBatcher", "QueueFullError", "RequestError", "ServeLimits", "create_app"]

__getattr__, __dir__ = lazy_exports(__name__, {
    "create_app": "sapbert_st.serve.app",
    "MicroBatcher": "sapbert_st.serve.batcher",
    "QueueFullError": "sapbert_st.serve.batcher",
    "RequestError": "sapbert_st.serve.limits",
    "ServeLimits": "sapbert_st.serve.limits",
}, globals())
