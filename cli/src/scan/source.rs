//! Cutting the inputs into pieces of work, in order, a window at a time.
//!
//! A file small enough to hold (every CloudTrail log file) is one piece, read and decompressed by a worker, so
//! that many files inflate in parallel. A large file or standard input is streamed: read (and inflated) here in
//! blocks cut at line ends, each block a piece, so that the lines of one file are evaluated in parallel and only
//! a few blocks are ever in memory. A large input that is not JSON lines (one huge log document) is read whole.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::read::MultiGzDecoder;

use super::progress::Progress;

/// How much of a large input one piece holds.
pub const BLOCK: usize = 2 << 20;
/// Files up to this size on disk are read whole by a worker.
const WHOLE_FILE: u64 = 4 << 20;

/// One piece of work.
pub enum Work {
    /// A whole input: the worker reads the file (`None`), or here are its bytes.
    Whole { input: usize, bytes: Option<Vec<u8>> },
    /// Consecutive JSON lines of a large input, the first being line `first_line`.
    Lines { input: usize, first_line: usize, bytes: Vec<u8> },
    /// The end of a streamed input, or why the rest of it could not be read.
    End { input: usize, error: Option<String> },
}

/// Pieces collected until there is enough to keep every worker busy.
struct Window {
    work: Vec<Work>,
    bytes: usize,
    threads: usize,
}

impl Window {
    fn push(&mut self, work: Work, bytes: usize) {
        self.work.push(work);
        self.bytes += bytes;
    }

    fn full(&self) -> bool {
        self.work.len() >= 16 * self.threads || self.bytes >= 2 * self.threads * BLOCK
    }

    fn take(&mut self) -> Vec<Work> {
        self.bytes = 0;
        std::mem::take(&mut self.work)
    }
}

/// Cuts `paths` into pieces and hands them to `send` a window at a time, in order, until done or `send` says
/// stop (the consumer has gone).
pub fn produce(paths: &[PathBuf], threads: usize, progress: &Progress, mut send: impl FnMut(Vec<Work>) -> bool) {
    let mut window = Window { work: Vec::new(), bytes: 0, threads };
    for (input, path) in paths.iter().enumerate() {
        let size = (path.as_os_str() != "-").then(|| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        match size {
            Some(size) if size <= WHOLE_FILE => window.push(Work::Whole { input, bytes: None }, size as usize),
            _ => {
                if !stream(input, path, &mut window, progress, &mut send) {
                    return;
                }
            }
        }
        if window.full() && !send(window.take()) {
            return;
        }
    }
    if !window.work.is_empty() {
        send(window.take());
    }
}

/// Streams one large input into the window; `false` when the consumer has gone.
fn stream(
    input: usize,
    path: &Path,
    window: &mut Window,
    progress: &Progress,
    send: &mut impl FnMut(Vec<Work>) -> bool,
) -> bool {
    let error = match stream_blocks(input, path, window, progress, send) {
        Ok(true) => None,
        Ok(false) => return false,
        Err(e) => Some(e),
    };
    window.push(Work::End { input, error }, 0);
    true
}

fn stream_blocks(
    input: usize,
    path: &Path,
    window: &mut Window,
    progress: &Progress,
    send: &mut impl FnMut(Vec<Work>) -> bool,
) -> Result<bool, String> {
    let file: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| e.to_string())?)
    };
    let mut raw = BufReader::with_capacity(256 << 10, Counted { inner: file, progress });
    let gzipped = raw.fill_buf().map_err(|e| e.to_string())?.starts_with(&[0x1f, 0x8b]);
    let mut reader: Box<dyn Read> = if gzipped { Box::new(MultiGzDecoder::new(raw)) } else { Box::new(raw) };
    let read_error = |e: std::io::Error| match gzipped {
        true => format!("input is not valid gzip: {e}"),
        false => e.to_string(),
    };

    let mut block = Vec::with_capacity(BLOCK);
    let mut end = fill(&mut reader, &mut block, BLOCK).map_err(read_error)?;
    if end || !first_line_is_json(&block) {
        // Small after all (standard input), or one document: read whole, as a small file is.
        reader.read_to_end(&mut block).map_err(read_error)?;
        window.push(Work::Whole { input, bytes: Some(block) }, BLOCK);
        return Ok(true);
    }
    let mut first_line = 1;
    loop {
        // Cut after the last complete line; a line longer than a block makes the block longer.
        let cut = match memchr::memrchr(b'\n', &block) {
            Some(newline) if !end => newline + 1,
            _ if !end => {
                end = fill(&mut reader, &mut block, BLOCK).map_err(read_error)?;
                continue;
            }
            _ => block.len(),
        };
        let mut rest = Vec::with_capacity(BLOCK);
        rest.extend_from_slice(block.get(cut..).unwrap_or_default());
        block.truncate(cut);
        let lines = memchr::memchr_iter(b'\n', &block).count();
        window.push(Work::Lines { input, first_line, bytes: block }, cut);
        first_line += lines;
        if window.full() && !send(window.take()) {
            return Ok(false);
        }
        block = rest;
        if end {
            return Ok(true);
        }
        end = fill(&mut reader, &mut block, BLOCK).map_err(read_error)?;
        if end && block.is_empty() {
            return Ok(true);
        }
    }
}

/// Reads until `block` holds `more` bytes more or the input ends; `true` at the end.
fn fill(reader: &mut dyn Read, block: &mut Vec<u8>, more: usize) -> std::io::Result<bool> {
    let want = block.len() + more;
    while block.len() < want {
        let n = reader.take((want - block.len()) as u64).read_to_end(block)?;
        if n == 0 {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the input is JSON lines: its first line is a whole JSON value on its own.
fn first_line_is_json(block: &[u8]) -> bool {
    let line = block.split(|b| *b == b'\n').next().unwrap_or_default();
    serde_json::from_slice::<serde::de::IgnoredAny>(line.trim_ascii()).is_ok()
}

/// A reader that reports the bytes it reads from disk, for the progress bar.
struct Counted<'p, R> {
    inner: R,
    progress: &'p Progress,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.progress.add_bytes(n as u64);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(bytes: &[u8]) -> Vec<Work> {
        let dir = std::env::temp_dir().join(format!("trailguard-source-{}-{}", std::process::id(), bytes.len()));
        std::fs::write(&dir, bytes).unwrap();
        let mut all = Vec::new();
        produce(std::slice::from_ref(&dir), 2, &Progress::hidden(None), |w| {
            all.extend(w);
            true
        });
        std::fs::remove_file(&dir).unwrap();
        all
    }

    #[test]
    fn a_large_json_lines_file_is_cut_at_line_ends_and_numbered() {
        let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(1000));
        let count = 3 * BLOCK / line.len() + 7;
        let bytes = line.repeat(count);
        let work = pieces(bytes.as_bytes());
        let mut next_line = 1;
        let mut blocks = 0;
        for piece in &work {
            if let Work::Lines { first_line, bytes, .. } = piece {
                assert_eq!(*first_line, next_line);
                assert!(bytes.ends_with(b"\n") && bytes.starts_with(b"{"), "cut at a line end");
                next_line += bytes.iter().filter(|b| **b == b'\n').count();
                blocks += 1;
            }
        }
        assert_eq!(next_line - 1, count, "every line once");
        assert!(blocks >= 3, "{blocks} blocks");
        assert!(matches!(work.last(), Some(Work::End { error: None, .. })));
    }

    #[test]
    fn a_large_document_and_a_small_file_are_read_whole() {
        let document = format!("{{\"Records\": [\n{}{{}}]}}", "{\"a\": 1},\n".repeat(BLOCK / 5));
        let work = pieces(document.as_bytes());
        assert!(
            matches!(work.as_slice(), [Work::Whole { bytes: Some(b), .. }, Work::End { error: None, .. }] if b.len() == document.len())
        );
        assert!(matches!(pieces(b"{}\n{}\n").as_slice(), [Work::Whole { bytes: None, .. }]));
    }

    #[test]
    fn a_damaged_gzip_stream_ends_with_its_error() {
        use std::io::Write;
        let line = format!("{{\"n\":\"{}\"}}\n", "y".repeat(500)).repeat(4 * BLOCK / 500);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(line.as_bytes()).unwrap();
        let mut bytes = gz.finish().unwrap();
        // A large random-looking tail keeps the file over the whole-file size; cutting it damages the stream.
        let mut state = 7u64;
        bytes.extend((0..WHOLE_FILE + 1).map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 56) as u8
        }));
        let work = pieces(&bytes);
        assert!(matches!(work.last(), Some(Work::End { error: Some(e), .. }) if e.contains("gzip")), "damage is named");
    }
}
