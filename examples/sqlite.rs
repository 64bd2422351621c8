//! A real SQLite connection owned by one caller's thread: `cargo run --example sqlite`.
//!
//! `rusqlite::Connection` is not `Sync`: one thread at a time may use it. Here the
//! connection is *built on* and *kept by* the thread of a caller named "sqlite"
//! (`Caller::try_new_thread_with`), and every query is a call to that caller that receives
//! `&mut Connection` (`#[caller::on_thread(caller = .., state = conn)]`). The rest of the
//! program — plain threads, async tasks, pooled workers — calls those functions as if the
//! connection were theirs, and never touches a lock or a `thread_local!`.
//!
//! Then a `PendingGroup` imports rows in parallel (each line is parsed on a pooled worker,
//! then inserted through the connection's thread) inside a transaction: the first failing
//! insert (a duplicate e-mail) cancels every import still queued or running, and the
//! transaction is rolled back, so the table is left as it was. A clean import commits.

use std::sync::OnceLock;

use caller::{Caller, Error, GroupMode};
use rusqlite::{params, Connection};

/// The caller whose thread owns the connection.
static DB: OnceLock<Caller> = OnceLock::new();

fn open() -> rusqlite::Result<Connection> {
    let conn = Connection::open_in_memory()?;
    conn.execute_batch(
        "CREATE TABLE users (
             id    INTEGER PRIMARY KEY,
             name  TEXT NOT NULL,
             email TEXT NOT NULL UNIQUE
         );",
    )?;
    Ok(conn)
}

/// Runs on the "sqlite" thread with its connection; callers pass `name` and `email` only.
#[caller::on_thread(caller = DB.get(), state = conn)]
fn insert_user(conn: &mut Connection, name: String, email: String) -> rusqlite::Result<i64> {
    let mut insert = conn.prepare_cached("INSERT INTO users (name, email) VALUES (?1, ?2)")?;
    insert.execute(params![name, email])?;
    Ok(conn.last_insert_rowid())
}

#[caller::on_thread(caller = DB.get(), state = conn)]
fn count_users(conn: &mut Connection) -> rusqlite::Result<i64> {
    conn.query_row("SELECT COUNT(*) FROM users", [], |row| row.get(0))
}

/// `BEGIN`, `COMMIT` or `ROLLBACK`.
#[caller::on_thread(caller = DB.get(), state = conn)]
fn transaction(conn: &mut Connection, statement: &'static str) -> rusqlite::Result<()> {
    conn.execute_batch(statement)
}

/// An async function with the connection: it holds it across its `.await`s (other
/// queries wait their turn) and reads the table in pages.
#[caller::on_thread(caller = DB.get(), state = conn)]
async fn names_by_domain(conn: &mut Connection, domain: String) -> rusqlite::Result<Vec<String>> {
    let mut names = Vec::new();
    let mut after = 0i64;
    loop {
        let page: Vec<(i64, String)> = {
            let mut page = conn.prepare_cached(
                "SELECT id, name FROM users WHERE email LIKE ?1 AND id > ?2 ORDER BY id LIMIT 10",
            )?;
            let rows = page.query_map(params![format!("%@{domain}"), after], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let Some(&(last, _)) = page.last() else {
            return Ok(names);
        };
        after = last;
        names.extend(page.into_iter().map(|(_, name)| name));
        // Let the caller's other calls run between pages.
        tokio::task::yield_now().await;
    }
}

/// One line of an import, parsed and normalised on a pooled worker, then inserted through
/// the connection's thread. Its insert joins whatever group this call is in.
#[caller::on_thread]
fn import(line: String) -> Result<i64, Error> {
    let (name, email) = line.split_once(',').unwrap_or((line.as_str(), ""));
    let email = email.trim().to_lowercase();
    insert_user(name.trim().to_owned(), email).wait_sync(None)
}

/// Import `lines` in parallel inside a transaction; roll back on the first failure.
async fn import_all(lines: Vec<String>) -> Result<usize, Error> {
    transaction("BEGIN").await?;
    let mut views = Vec::new();
    let group = caller::pending_group!(mode = GroupMode::CancelAndRaise, {
        let imports: Vec<_> = lines.into_iter().map(import).collect();
        views = imports.iter().map(|p| p.any()).collect();
        let mut ids = Vec::new();
        for p in imports {
            ids.push(p.await?);
        }
        Ok::<_, Error>(ids.len())
    });
    let cancelled = views.iter().filter(|p| p.cancelled()).count();
    match group {
        Ok(Some(Ok(n))) => {
            transaction("COMMIT").await?;
            println!("  imported {n} rows, committed");
            Ok(n)
        }
        failed => {
            transaction("ROLLBACK").await?;
            println!(
                "  the import failed: {} of {} imports were cancelled, the transaction was rolled back",
                cancelled,
                views.len()
            );
            match failed {
                Err(e) | Ok(Some(Err(e))) => Err(e),
                Ok(_) => Err(Error::cancelled("the import group was cancelled")),
            }
        }
    }
}

#[caller::main]
async fn main() -> Result<(), Error> {
    let db = Caller::try_new_thread_with("sqlite", open)?;
    DB.set(db.clone()).expect("set once");
    println!(
        "opened an in-memory SQLite database on the thread of caller '{}'",
        db.name()
    );

    // 1. Plain threads, each inserting through the connection's thread.
    let threads: Vec<_> = (0..4)
        .map(|t| {
            std::thread::spawn(move || -> Result<(), Error> {
                for i in 0..25 {
                    insert_user(format!("t{t}-{i}"), format!("t{t}-{i}@threads.example"))
                        .wait_sync(None)?;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join().expect("an inserting thread")?;
    }
    println!(
        "4 threads inserted 25 rows each: {} rows",
        count_users().await?
    );

    // 2. Async tasks on this thread's caller, all in flight at once.
    let me = Caller::current().expect("#[caller::main] runs a caller");
    let tasks: Vec<_> = (0..50)
        .map(|i| {
            me.call_soon_async(move || async move {
                insert_user(format!("task-{i}"), format!("task-{i}@tasks.example")).await
            })
        })
        .collect();
    for task in tasks {
        task.await??;
    }
    println!(
        "50 async tasks inserted one row each: {} rows",
        count_users().await?
    );
    let names = names_by_domain("tasks.example".into()).await?;
    println!(
        "an async query read them back in pages: {} names, first {:?}",
        names.len(),
        names.first()
    );

    // 3. A group that imports in parallel and stops at the first failure.
    let before = count_users().await?;
    let mut lines: Vec<String> = (0..40)
        .map(|i| format!("Imported {i}, Imported.{i}@Import.Example"))
        .collect();
    // A duplicate e-mail (after normalising): the UNIQUE constraint fails this insert.
    lines[10] = "Duplicate, IMPORTED.3@import.example".into();
    println!("importing {} lines, one of them a duplicate:", lines.len());
    let err = import_all(lines).await.unwrap_err();
    println!("  the group's error: {err}");
    let after = count_users().await?;
    assert_eq!(before, after, "the failed import left the table as it was");
    println!("  rows before: {before}, after: {after}");

    let lines = (0..40)
        .map(|i| format!("Imported {i}, Imported.{i}@Import.Example"))
        .collect();
    println!("importing 40 clean lines:");
    import_all(lines).await?;
    println!("rows now: {}", count_users().await?);

    // The connection is closed on its own thread when its caller stops.
    db.stop(true);
    db.stopped().await?;
    println!(
        "caller '{}' stopped; the connection was closed on its thread",
        db.name()
    );
    Ok(())
}
