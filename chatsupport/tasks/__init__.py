"""Background jobs. Importing this package registers every task with the queue."""

from chatsupport.tasks import housekeeping  # noqa: F401
from chatsupport.tasks import ingest  # noqa: F401
from chatsupport.tasks import crawl  # noqa: F401
from chatsupport.tasks import mail  # noqa: F401
from chatsupport.tasks import exports  # noqa: F401
from chatsupport.tasks import analytics  # noqa: F401
from chatsupport.tasks import webhooks  # noqa: F401
from chatsupport.tasks import backups  # noqa: F401
from chatsupport.tasks import retention  # noqa: F401
