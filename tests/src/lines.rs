//! Reading a child process's output: every line on a thread of its own (so the child never
//! blocks on a full pipe), and a bounded tail of it for error messages.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The last lines of some output, shared between reading threads and the test.
#[derive(Debug, Clone)]
pub struct Tail {
    lines: Arc<Mutex<VecDeque<String>>>,
    keep: usize,
}

impl Tail {
    /// Keeps the last `keep` lines.
    pub fn new(keep: usize) -> Tail {
        Tail {
            lines: Arc::new(Mutex::new(VecDeque::new())),
            keep,
        }
    }

    /// Adds a line, dropping the oldest beyond the bound.
    pub fn push(&self, line: String) {
        if let Ok(mut lines) = self.lines.lock() {
            if lines.len() == self.keep {
                lines.pop_front();
            }
            lines.push_back(line);
        }
    }

    /// The kept lines, joined with newlines.
    pub fn joined(&self) -> String {
        self.lines
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }
}

/// Reads `pipe` line by line (lossy UTF-8, trailing white space trimmed) until it closes,
/// handing each line to `on_line`.
pub fn each_line(
    pipe: impl Read + Send + 'static,
    mut on_line: impl FnMut(String) + Send + 'static,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) => on_line(String::from_utf8_lossy(&line).trim_end().to_owned()),
            }
        }
    })
}
