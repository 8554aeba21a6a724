"""The Python client other services use: sync (:class:`Client`) and async (:class:`AsyncClient`) over httpx.

Results are the service's own response models (``ClassifyResponse``, ``AlertOut``, ``IncidentOut``,
``JobOut``...): one schema, no copy to drift. 429 and 503 answers are retried after their ``Retry-After``
(capped by ``RetryPolicy.max_wait_s``; exponential backoff when absent), as are connection errors; other
errors raise :class:`ApiError` with the service's ``error``/``type``/``detail``. Lists that page come as
iterators (``iter_alerts``, ``iter_incidents``, ``iter_comments``). A file of comments is imported as a
background job (``import_comments``, then ``wait_job``). :func:`verify_webhook` checks a received webhook's
signature (``standardwebhooks``).

    with Client("http://127.0.0.1:8000", api_key="...") as nlp:
        result = nlp.classify(["The parcel was late"])
        for alert in nlp.iter_alerts(status=["open"]):
            ...
        job = nlp.wait_job(nlp.import_comments(Path("feedback.csv")).id)

Every request is built once in :mod:`nlp_service.client.calls`; the two classes only send them.
"""

from nlp_service.client.aio import AsyncClient
from nlp_service.client.calls import Call
from nlp_service.client.retry import ApiError, RetryPolicy, retry_after_s
from nlp_service.client.sync import Client
from nlp_service.client.webhooks import verify_webhook

__all__ = ["ApiError", "AsyncClient", "Call", "Client", "RetryPolicy", "retry_after_s", "verify_webhook"]
