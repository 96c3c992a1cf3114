"""`chatsupport reindex`: after a model change every chunk gets new vectors and ingestion is allowed again."""

from __future__ import annotations

from pathlib import Path

from chatsupport.config import load_settings
from chatsupport.retrieval.embedder import shared_embedder
from chatsupport.retrieval.indexing import ModelMismatchError, check_model, index_source
from chatsupport.ingest.chunking import Chunk
from chatsupport.store import knowledge_index as index
from chatsupport.store.db import Database, connect
from chatsupport.store.lock import DataDirLock
from chatsupport.store.migrations import migrate
from conftest import make_env, run_cli


def _seed(data: Path) -> None:
    settings = load_settings(env=make_env(data))
    data.mkdir(parents=True, exist_ok=True)
    migrate(settings.data.database)
    db = Database(settings.data.database)
    db.write(lambda c: (c.execute("INSERT INTO workspaces(id, name, slug) VALUES ('w', 'W', 'w')"),
                        c.execute("INSERT INTO chatbots(id, workspace_id, name, public_key, identity_secret) "
                                  "VALUES ('b', 'w', 'B', 'pk', 's')")))
    doc = db.write(lambda c: index.add_document(c, "b", title="Guide"))
    embedder = shared_embedder(settings.EMBEDDING_MODEL, settings.model_cache_path, settings.models_path)
    chunks = [Chunk(title="Guide", heading="Refunds", content="Refunds take 14 days.", position=0),
              Chunk(title="Guide", heading="Invoices", content="Invoices are in billing settings.", position=1)]
    index_source(db, embedder, "b", chunks, document_id=doc)
    # pretend the index was built by another model: its vectors are garbage and the recorded name differs
    def outdate(c) -> None:  # type: ignore[no-untyped-def]
        stale = [(r["rowid"], r["chatbot_id"], bytes(384 * 4)) for r in index.chunk_texts(c)]
        index.replace_vectors(c, stale)
        index.record_model(c, "some-older-model", 384)

    db.write(outdate)
    db.close()



def test_reindex_rebuilds_vectors_and_records_the_model(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _seed(data)
    conn = connect(data / "chatsupport.db")
    try:
        check_model(conn, "all-MiniLM-L6-v2", 384)
        raise AssertionError("a different recorded model must be refused")
    except ModelMismatchError as exc:
        assert "chatsupport reindex" in str(exc)
    conn.close()

    with DataDirLock(data / ".server.lock"):
        refused = run_cli(data, "reindex")
    assert refused.returncode == 1 and "error [server_running]" in refused.stderr

    result = run_cli(data, "reindex")
    assert result.returncode == 0, result.stderr
    assert "re-embedded 2 chunks" in result.stdout
    assert "2/2 chunks" in result.stderr  # the progress bar

    conn = connect(data / "chatsupport.db")
    recorded = index.recorded_model(conn)
    assert recorded is not None and recorded[0] != "some-older-model" and recorded[1] == 384
    blobs = [r["embedding"] for r in conn.execute("SELECT embedding FROM knowledge_chunk_vectors")]
    assert len(blobs) == 2 and all(b != bytes(384 * 4) for b in blobs)
    assert conn.execute("SELECT count(*) AS n FROM knowledge_chunk_bits").fetchone()["n"] == 2
    check_model(conn, recorded[0], 384)  # ingestion is accepted again
    conn.close()
