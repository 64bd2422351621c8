//! The forms of `pending_group!`'s body: braces, `< ... >` (the design card's form), and
//! `|pg|` naming the group; and duration literals with units.
use caller::PendingGroup;

#[caller::main]
async fn main() -> Result<(), caller::Error> {
    let braces = caller::pending_group!(mode = 1, timeout = 5s, { 1 + 1 })?;
    let angles = caller::pending_group!(mode = 1, timeout = 5s, <
        let a = caller::to_thread(|| 1);
        a.await.unwrap() + 1
    >)?;
    assert_eq!(braces, angles);
    let named = caller::pending_group!(cancellation_timeout = 250ms, |pg| {
        pg.cancellation_timeout()
    })?;
    assert_eq!(named, Some(std::time::Duration::from_millis(250)));
    let typed = caller::pending_group!(|pg: PendingGroup| pg.id())?;
    assert!(typed.is_some());
    Ok(())
}
