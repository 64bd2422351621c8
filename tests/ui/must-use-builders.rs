// The result of a builder method, a group, a host loop, a stream and a pending are
// `#[must_use]`: each statement below drops one, which is a warning by default (denied
// here), one per statement.
#![deny(unused_must_use)]

use std::time::Duration;

fn main() -> Result<(), caller::Error> {
    let builder = caller::PendingGroup::builder();
    builder.clone().timeout(Duration::from_secs(1));
    builder.build();
    caller::PendingGroup::new(caller::GroupMode::Raise);
    caller::CallOptions::new().name("x");
    caller::Caller::builder().name("x");
    caller::Caller::builder()
        .backend(caller::Backend::Host)
        .host(|| ())?;
    caller::as_completed(Vec::<caller::Pending<u8>>::new()).max_concurrent(2);
    caller::Pending::<u8>::new().protect();
    Ok(())
}
