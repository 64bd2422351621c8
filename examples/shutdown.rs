//! A small TCP service and its graceful shutdown: `cargo run --example shutdown`.
//!
//! The server listens on 127.0.0.1 only, on a port the system picks. Every connection is
//! a call in the server's group — a supervisor, so a failing connection does not take its
//! siblings down — and runs a nested group of its own whose members are its requests.
//! One request per line: `hello NAME` (names the connection), `hash TEXT` (runs on a
//! worker thread), `sleep MS` (waits on the server's thread); anything else fails the
//! connection.
//!
//! The clients are plain threads, each with a bounded number of requests and a read
//! timeout. When the quick ones are done, the server stops accepting, gives the open
//! connections a grace period to finish, then cancels what is left and reports it.

use std::io::{self, BufRead, Write};
use std::net::SocketAddr;
use std::time::Duration;

use caller::{job, CallOptions, Caller, Error, GroupMode, PendingGroup};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// How long open connections get to finish on their own once the server stops accepting.
const GRACE: Duration = Duration::from_millis(300);

/// FNV-1a, 64 bits: the "work" of a `hash` request.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// Accept connections until `stop` fires; each one is a call, and so a member of the
/// group this runs in.
async fn accept(listener: TcpListener, mut stop: oneshot::Receiver<()>) -> usize {
    let here = Caller::current().expect("runs on the server's caller");
    let mut accepted = 0;
    loop {
        tokio::select! {
            _ = &mut stop => break,
            conn = listener.accept() => match conn {
                Ok((stream, peer)) => {
                    accepted += 1;
                    // Detached from us, but still a member of the server's group.
                    drop(here.schedule_call(
                        job::try_future(move || serve(stream, peer)),
                        CallOptions::new().name(format!("connection {peer}")),
                    ));
                }
                Err(e) => {
                    eprintln!("accept failed: {e}");
                    break;
                }
            },
        }
    }
    accepted
}

/// One connection: its requests run in a nested group, so cancelling the connection
/// cancels the request it is serving, and a failed request ends the connection.
async fn serve(stream: TcpStream, peer: SocketAddr) -> io::Result<usize> {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read).lines();
    let out = PendingGroup::new(GroupMode::CancelAndRaise)
        .try_run(async {
            let mut answered = 0;
            while let Some(line) = lines.next_line().await? {
                let reply = request(&line, peer).await?;
                write.write_all(format!("{reply}\n").as_bytes()).await?;
                answered += 1;
            }
            Ok::<usize, io::Error>(answered)
        })
        .await;
    match out {
        Ok(Some(answered)) => answered,
        Ok(None) => Ok(0),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// One request: a call of its own, on a worker or on this thread.
async fn request(line: &str, peer: SocketAddr) -> io::Result<String> {
    let (verb, arg) = line.split_once(' ').unwrap_or((line, ""));
    let arg = arg.to_owned();
    let reply = match verb {
        "hello" => {
            let me = Caller::current_pending().expect("runs as a call");
            me.set_meta("client", arg.as_str());
            Ok(format!("hello {arg}"))
        }
        "hash" => {
            caller::to_thread_with(
                move || format!("{:016x}", fnv1a(arg.as_bytes())),
                CallOptions::new().name(format!("hash for {peer}")),
            )
            .await
        }
        "sleep" => {
            let ms: u64 = arg.parse().map_err(io::Error::other)?;
            let here = Caller::current().expect("runs on the server's caller");
            here.schedule_call(
                job::future(move || async move {
                    caller::sleep(Duration::from_millis(ms)).await;
                    format!("slept {ms} ms")
                }),
                CallOptions::new().name(format!("sleep {ms} ms for {peer}")),
            )
            .await
        }
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("unknown request {line:?}"),
            ))
        }
    };
    reply.map_err(io::Error::other)
}

/// A client: sends its requests one at a time, then (if asked) waits for the server to
/// close the connection. Bounded by a read timeout.
fn client(addr: SocketAddr, requests: &[&str], then_wait: bool) -> io::Result<Vec<String>> {
    let stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = io::BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    let mut answers = Vec::new();
    for r in requests {
        writeln!(writer, "{r}")?;
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            answers.push("<closed by the server>".to_owned());
            return Ok(answers);
        }
        answers.push(line.trim_end().to_owned());
    }
    if then_wait {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            answers.push("<closed by the server>".to_owned());
        }
    }
    Ok(answers)
}

/// Wait for a client thread without blocking this caller's thread, which serves the
/// connections: the blocking `join` runs on a pooled worker.
async fn joined<T: Send + Unpin + 'static>(client: std::thread::JoinHandle<T>) -> T {
    caller::to_thread(move || client.join().expect("client thread"))
        .await
        .expect("the join ran")
}

/// Whether the server's group has a member with this user metadata.
fn has_client(server: &PendingGroup, name: &str) -> bool {
    server
        .members()
        .iter()
        .any(|p| p.meta("client").as_deref() == Some(name))
}

#[caller::main(name = "server")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    println!("listening on {addr}");

    let server = PendingGroup::builder()
        .mode(GroupMode::Supervisor)
        .cancellation_timeout(Duration::from_secs(2))
        .build();
    let (stop_accepting, stop) = oneshot::channel();
    let mut serving = {
        let server = server.clone();
        Caller::current()
            .expect("#[caller::main] runs a caller")
            .call_soon_async(move || async move { server.run(accept(listener, stop)).await })
    };

    // The clients: plain threads.
    let spawn = move |requests: &'static [&'static str], then_wait| {
        std::thread::spawn(move || client(addr, requests, then_wait))
    };
    let quick = [
        spawn(&["hello quick-1", "hash a", "hash b"], false),
        spawn(&["hello quick-2", "hash c", "sleep 5"], false),
    ];
    let bad = spawn(&["hello bad", "frobnicate"], false);
    let slow = spawn(&["hello slow", "sleep 60000"], false);
    let idle = spawn(&["hello idle"], true);

    for c in quick {
        println!("quick client got {:?}", joined(c).await?);
    }
    println!("bad client got {:?}", joined(bad).await?);

    // Wait (bounded) until the slow and idle connections are in the tree, so the
    // report below is the same on every run.
    let mut tries = 0;
    while !(has_client(&server, "slow") && has_client(&server, "idle")) {
        tries += 1;
        if tries > 5000 {
            return Err("the slow and idle clients never showed up".into());
        }
        caller::sleep(Duration::from_millis(1)).await;
    }
    println!("--- caller::dump() before the shutdown ---");
    print!("{}", caller::dump());
    println!("---");

    // 1. Stop accepting. 2. Give the open connections a grace period.
    let _ = stop_accepting.send(());
    let serving_view = serving.any();
    if serving_view.wait_done(Some(GRACE)).await.is_err() {
        // 3. Cancel what is left, and say what it was.
        let left = server.members();
        println!(
            "shutdown: {} call(s) still running after a grace period of {GRACE:?}; cancelling:",
            left.len()
        );
        for p in &left {
            let client = p.meta("client").map(|c| format!(" (client {c})"));
            println!("  {}{}", p.metadata().name(), client.unwrap_or_default());
        }
        server.cancel("the server is shutting down");
    }
    let outcome = serving.wait(Some(Duration::from_secs(5))).await?;
    match outcome {
        Ok(accepted) => println!("server: stopped quietly after {accepted:?} connection(s)"),
        Err(Error::Group(g)) => {
            println!("server: {} connection(s) failed:", g.failures.len());
            for f in &g.failures {
                println!("  {f}");
            }
            if let Some(why) = &g.cancelled {
                println!("server: ended cancelled: {why}");
            }
            if !g.abandoned.is_empty() {
                println!("server: gave up waiting for {:?}", g.abandoned);
            }
        }
        Err(e) => println!("server: {e}"),
    }
    println!("slow client got {:?}", joined(slow).await?);
    println!("idle client got {:?}", joined(idle).await?);
    Ok(())
}
