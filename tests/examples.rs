//! Runs every example binary and checks that it prints what its cookbook page says.
//!
//! The binaries are the ones `cargo test` builds next to this test
//! (`target/<profile>/examples/NAME`): `cargo test` builds every example before it runs
//! the tests. With a target filter (`cargo test --test examples`) build them too:
//! `cargo build --examples && cargo test --test examples`.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long one example may run; each finishes in a few seconds.
const LIMIT: Duration = Duration::from_secs(60);

fn example_path(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    // target/<profile>/deps/examples-<hash> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>");
    let path = dir
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo test` (which builds the examples) or \
         `cargo build --examples && cargo test --test examples`",
        path.display()
    );
    path
}

/// What a finished example printed.
struct Output {
    stdout: String,
    stderr: String,
    success: bool,
}

impl Output {
    fn has(&self, text: &str) -> &Self {
        assert!(
            self.stdout.contains(text),
            "the output lacks {text:?}:\n{}\n(stderr: {})",
            self.stdout,
            self.stderr
        );
        self
    }
}

/// Spawn an example with its stdout piped line by line into a channel.
fn spawn(name: &str, args: &[&str]) -> (Child, mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let mut child = Command::new(example_path(name))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start example {name}: {e}"));
    let (line_tx, lines) = mpsc::channel();
    let stdout = child.stdout.take().expect("piped stdout");
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line_tx.send(line).is_err() {
                break;
            }
        }
    });
    let (err_tx, stderr) = mpsc::channel();
    let mut err_pipe = child.stderr.take().expect("piped stderr");
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = err_pipe.read_to_string(&mut text);
        let _ = err_tx.send(text);
    });
    (child, lines, stderr)
}

/// Collect the rest of the output until the example exits, within [`LIMIT`].
fn finish(
    name: &str,
    mut child: Child,
    lines: mpsc::Receiver<String>,
    stderr: mpsc::Receiver<String>,
    mut stdout: String,
) -> Output {
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => {
                stdout.push_str(&line);
                stdout.push('\n');
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("example {name} did not finish within {LIMIT:?}; it printed:\n{stdout}");
            }
        }
    }
    let status = child.wait().expect("the example's exit status");
    let stderr = stderr.recv_timeout(LIMIT).unwrap_or_default();
    Output {
        stdout,
        stderr,
        success: status.success(),
    }
}

fn run(name: &str, args: &[&str]) -> Output {
    let (child, lines, stderr) = spawn(name, args);
    let out = finish(name, child, lines, stderr, String::new());
    assert!(
        out.success,
        "example {name} failed:\n{}\n{}",
        out.stdout, out.stderr
    );
    out
}

/// The number in `line` right before `word` (e.g. "12 hashed" -> 12).
fn number_before(out: &Output, word: &str) -> usize {
    out.stdout
        .split(['\n', ','])
        .find_map(|part| {
            let part = part.trim();
            part.strip_suffix(word)
                .or_else(|| part.split_once(word).map(|(before, _)| before))
                .and_then(|before| before.split_whitespace().last())
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or_else(|| panic!("no number before {word:?} in:\n{}", out.stdout))
}

#[test]
fn tour_prints_each_step() {
    run("tour", &[])
        .has("inventory on 'store': 9 items")
        .has("to_thread counted 2262 primes below 20000")
        .has("slow call: cancelled: closing time")
        .has("cancelled: true")
        .has("group: 1 member of the group failed\n  - '")
        .has("): invalid digit found in string");
}

#[test]
fn macros_example_runs_on_the_named_threads() {
    run("macros", &[])
        .has("main runs the caller \"main\"")
        .has("checksum on a worker: 532")
        .has("rows on \"db\": 2")
        .has("audited: first\naudited: second")
        .has("[main] back on the main thread");
}

#[test]
fn host_loop_runs_calls_on_the_gui_thread() {
    run("host_loop", &[])
        .has("label: worker 1 says hi")
        .has("label: blinked after 20ms")
        .has("never blocked on it");
}

#[test]
fn event_loop_runs_every_call_on_the_loops_thread() {
    let out = run("event_loop", &[]);
    out.has("[main] call_soon from worker thread 1")
        .has("[main] call_soon from worker thread 2")
        .has("[main] call_soon from worker thread 3")
        .has("[main] call_later(30 ms) fired")
        .has("[main] async call woke from caller::sleep, 3 of 3")
        .has("[main] tokio::time::sleep(20 ms) ended, as a guest")
        .has("quit: every call is done");
    let notes = out.stdout.lines().filter(|l| l.starts_with('[')).count();
    assert_eq!(notes, 8, "eight calls ran:\n{}", out.stdout);
    assert!(
        out.stdout
            .lines()
            .filter(|l| l.starts_with('['))
            .all(|l| l.starts_with("[main]")),
        "every call ran on the loop's thread, main:\n{}",
        out.stdout
    );
}

#[test]
fn progress_hashes_every_item_with_bounded_concurrency() {
    let out = run("progress", &[]);
    out.has("hashed all 3000 items; digest ")
        .has("3000 hashed, 0 cancelled or failed after they were scheduled, 0 never scheduled");
    let peak = number_before(&out, "item(s) ran at once");
    assert!((1..=8).contains(&peak), "at most 8 at once, saw {peak}");
}

#[test]
fn progress_stops_at_the_first_error() {
    let out = run("progress", &["--fail-at", "1234"]);
    out.has("stopped at the first error: 'hash item 1234' (#")
        .has("): item 1234 is corrupt");
    assert!(number_before(&out, "hashed") < 3000);
    assert!(
        number_before(&out, "never scheduled") > 0,
        "items after the failure were never scheduled"
    );
}

#[cfg(unix)]
#[test]
fn progress_stops_cleanly_on_ctrl_c() {
    let (child, lines, stderr) = spawn("progress", &["--slow"]);
    // The first line is printed after the Ctrl-C handler is installed.
    let first = lines
        .recv_timeout(LIMIT)
        .expect("progress printed its first line");
    assert!(first.starts_with("hashing 3000 items"), "{first}");
    // With --slow the run takes 3000 × 20 ms / 8 ≈ 7.5 s: SIGINT arrives long before.
    let killed = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -INT failed");
    let out = finish("progress", child, lines, stderr, first + "\n");
    assert!(
        out.success,
        "a clean stop exits with success:\n{}",
        out.stderr
    );
    out.has("stopped: cancelled: interrupted by Ctrl-C");
    assert!(number_before(&out, "never scheduled") > 0);
}

#[test]
fn shutdown_cancels_what_is_left_and_reports_it() {
    let out = run("shutdown", &[]);
    out.has("listening on 127.0.0.1:")
        .has("quick client got [\"hello quick-1\", ")
        .has("quick client got [\"hello quick-2\", ")
        .has("\"slept 5 ms\"]")
        .has("bad client got [\"hello bad\", \"<closed by the server>\"]")
        .has("--- caller::dump() before the shutdown ---")
        .has("caller 'server'")
        .has("group #")
        .has("mode=Supervisor")
        .has("call(s) still running after a grace period of 300ms; cancelling:")
        .has("(client slow)")
        .has("(client idle)")
        .has("sleep 60000 ms for 127.0.0.1:")
        .has("server: 1 connection(s) failed:")
        .has(") client=bad: unknown request \"frobnicate\"")
        .has("server: ended cancelled: the server is shutting down")
        .has("slow client got [\"hello slow\", \"<closed by the server>\"]")
        .has("idle client got [\"hello idle\", \"<closed by the server>\"]");
    assert_eq!(
        number_before(&out, "call(s) still running"),
        3,
        "the slow and idle connections and the slow request:\n{}",
        out.stdout
    );
}

#[test]
fn sqlite_owns_the_connection_on_one_thread_and_rolls_back_a_failed_import() {
    let out = run("sqlite", &[]);
    out.has("opened an in-memory SQLite database on the thread of caller 'sqlite'")
        .has("4 threads inserted 25 rows each: 100 rows")
        .has("50 async tasks inserted one row each: 150 rows")
        .has("an async query read them back in pages: 50 names, first Some(\"task-0\")")
        .has("imports were cancelled, the transaction was rolled back")
        .has("UNIQUE constraint failed: users.email")
        .has("rows before: 150, after: 150")
        .has("imported 40 rows, committed")
        .has("rows now: 190")
        .has("caller 'sqlite' stopped; the connection was closed on its thread");
}

#[test]
fn tokio_first_makes_the_runtimes_thread_a_caller() {
    let out = run("tokio_first", &[]);
    out.has("main thread is now caller 'main' (main_thread() = Some(\"main\"))")
        .has("  tokio task: tick 3")
        .has("block_on inside the runtime: invalid argument: block_on was called inside a tokio runtime")
        .has("use `Caller::builder().run_here(fut).await`")
        .has("after run_here: Caller::current() = None");
    let filled = out
        .stdout
        .lines()
        .find(|l| l.starts_with("main thread's state, filled from worker threads: "))
        .unwrap_or_else(|| panic!("no state line in:\n{}", out.stdout));
    assert_eq!(filled.matches("caller-worker-").count(), 3, "{filled}");
}
