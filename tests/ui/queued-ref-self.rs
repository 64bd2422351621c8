struct Logger {
    prefix: String,
}

impl Logger {
    #[caller::queued]
    fn log(&self, line: String) {
        println!("{}{line}", self.prefix);
    }
}

fn main() {
    let logger = Logger { prefix: "> ".into() };
    logger.log("hello".to_owned());
}
