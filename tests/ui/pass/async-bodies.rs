//! Async bodies: `!Send` values across `.await`, `?`, early `return`, `Result` values.
use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

#[caller::on_thread(name = "ui-async")]
async fn count(words: Vec<String>) -> Result<usize, std::num::ParseIntError> {
    let seen = Rc::new(RefCell::new(0));
    for w in &words {
        caller::sleep(Duration::from_millis(1)).await;
        if w.is_empty() {
            return Ok(*seen.borrow());
        }
        *seen.borrow_mut() += w.parse::<usize>()?;
    }
    let total = *seen.borrow();
    Ok(total)
}

#[caller::queued]
async fn log(line: String) -> Result<(), String> {
    let local = Rc::new(line);
    caller::sleep(Duration::from_millis(1)).await;
    if local.is_empty() {
        return Err("empty line".into());
    }
    Ok(())
}

#[caller::main]
async fn main() -> Result<(), caller::Error> {
    let total = count(vec!["1".into(), "2".into()]).await?;
    assert_eq!(total, 3);
    assert!(count(vec!["x".into()]).await.unwrap_err().is_failure());
    log("hello".into());
    // `?` in a group body returns from the body (an async block), not from `main`.
    let sum = caller::pending_group!(mode = 1, timeout = 10, {
        let a = count(vec!["4".into()]);
        let b = count(vec!["5".into()]);
        Ok::<_, caller::Error>(a.await? + b.await?)
    })?;
    assert_eq!(sum.expect("the body finished")?, 9);
    Ok(())
}
