//! What every SQLite file of the node shares: the write-ahead log, `synchronous=FULL` (a commit
//! is on disk when it returns), a busy timeout, and errors that name the file.

use std::path::Path;

use plexspaces_types::ErrorCode;
use rusqlite::Connection;

use crate::{Error, Result};

/// A failure of the SQLite file `path`, which is `what` ("the KV store").
pub(crate) fn error(what: &str, path: &Path, error: rusqlite::Error) -> Error {
    Error::new(ErrorCode::Internal, format!("{what} {}: {error}", path.display()))
}

/// A connection to `path` (created when missing) with the node's settings.
pub(crate) fn connect(what: &str, path: &Path) -> Result<Connection> {
    let failed = |failure| error(what, path, failure);
    let connection = Connection::open(path).map_err(failed)?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000;",
        )
        .map_err(failed)?;
    Ok(connection)
}
