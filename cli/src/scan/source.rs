//! Cutting the inputs into pieces of work, in order.
//!
//! A file small enough to hold (every CloudTrail log file) is one piece, read and decompressed by a worker, so
//! that many files inflate in parallel. A large file or standard input is streamed: read (and inflated) here in
//! blocks cut at line ends, each block a piece, so that the lines of one file are evaluated in parallel and only
//! a few blocks are ever in memory. A large input that is not JSON lines (one huge log document) is read whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use flate2::read::MultiGzDecoder;

use super::progress::Progress;
use super::sift::{RegisteredKeys, Sifted};

/// How much of a large input one piece holds.
pub const BLOCK: usize = 2 << 20;
/// Files up to this size on disk are read whole by a worker.
const WHOLE_FILE: u64 = 4 << 20;

/// One piece of work.
pub enum Work {
    /// A whole input: the worker reads the file (`None`), or here are its bytes.
    Whole { input: usize, bytes: Option<Vec<u8>> },
    /// Consecutive JSON lines of a large input (numbered when reported, in order: counting them here would
    /// make this thread the bottleneck); `at` is where they start in a plain file, which can be read again there.
    Lines { input: usize, bytes: Vec<u8>, at: Option<u64> },
    /// A block of a plain file the first pass sifted, to be read again from `file`: whole, or only the lines the
    /// sift passed on ([`Sifted::whole`]).
    Sifted { input: usize, file: Arc<File>, sifted: Arc<Sifted>, whole: bool },
    /// The end of a streamed input, or why the rest of it could not be read.
    End { input: usize, error: Option<String> },
}

/// Block buffers the workers are done with, for the reader to fill again: memory once touched is reused, not
/// given back and faulted in anew for every block.
#[derive(Default)]
pub struct Buffers(Mutex<Vec<Vec<u8>>>);

impl Buffers {
    /// A buffer to fill: one given back, or a new one.
    pub fn take(&self) -> Vec<u8> {
        let spare = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut buffer = spare.unwrap_or_else(|| Vec::with_capacity(BLOCK));
        buffer.clear();
        buffer
    }

    /// Returns a block's buffer once its lines are read.
    pub fn give(&self, buffer: Vec<u8>) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(buffer);
    }
}

/// The blocks the first pass sifted, by input: every block of each plain JSON-lines file it read to the end.
pub type Sifts = BTreeMap<usize, Vec<Arc<Sifted>>>;

/// Cuts `paths` into pieces and hands them to `send` in order, until done or `send` says stop (the consumer has
/// gone). `send` blocks while enough pieces are in flight: that is what bounds memory.
pub fn produce(paths: &[PathBuf], progress: &Progress, buffers: &Buffers, send: impl FnMut(Work) -> bool) {
    produce_sifted(paths, &Sifts::new(), None, progress, buffers, send)
}

/// [`produce`], where an input the first pass sifted is handed on as its sifted blocks, to be read again by
/// offset, rather than streamed; `registered` says which blocks are read again whole.
pub fn produce_sifted(
    paths: &[PathBuf],
    sifts: &Sifts,
    registered: Option<&RegisteredKeys>,
    progress: &Progress,
    buffers: &Buffers,
    mut send: impl FnMut(Work) -> bool,
) {
    for (input, path) in paths.iter().enumerate() {
        let size = (path.as_os_str() != "-").then(|| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
        let going = match (sifts.get(&input), registered, size) {
            (Some(blocks), Some(registered), _) => match File::open(path) {
                Ok(file) => {
                    let file = Arc::new(file);
                    let mut going = true;
                    for sifted in blocks {
                        progress.add_bytes(sifted.len as u64);
                        let (file, sifted) = (file.clone(), sifted.clone());
                        going = send(Work::Sifted { input, file, whole: sifted.whole(registered), sifted });
                        if !going {
                            break;
                        }
                    }
                    going && send(Work::End { input, error: None })
                }
                Err(e) => send(Work::End { input, error: Some(e.to_string()) }),
            },
            (_, _, Some(size)) if size <= WHOLE_FILE => send(Work::Whole { input, bytes: None }),
            _ => match stream(input, path, progress, buffers, &mut send) {
                Ok(going) => going,
                Err(e) => send(Work::End { input, error: Some(e) }),
            },
        };
        if !going {
            return;
        }
    }
}

/// Streams one large input, ending with the piece that counts it as read; `Ok(false)` when the consumer has gone.
fn stream(
    input: usize,
    path: &Path,
    progress: &Progress,
    buffers: &Buffers,
    send: &mut impl FnMut(Work) -> bool,
) -> Result<bool, String> {
    let mut file: Box<dyn Read> = if path.as_os_str() == "-" {
        Box::new(std::io::stdin())
    } else {
        Box::new(std::fs::File::open(path).map_err(|e| e.to_string())?)
    };
    let mut magic = Vec::with_capacity(2);
    file.by_ref().take(2).read_to_end(&mut magic).map_err(|e| e.to_string())?;
    let gzipped = magic == [0x1f, 0x8b];
    let read_error = |e: std::io::Error| match gzipped {
        true => format!("input is not valid gzip: {e}"),
        false => e.to_string(),
    };
    let mut block = buffers.take();
    // Plain text goes straight from the file into the blocks (unwrapped, so that the file's own reading into
    // unfilled memory is used and nothing is zeroed first), counted here; gzip is counted under its decoder.
    let (mut reader, counted): (Box<dyn Read>, Option<&Progress>) = if gzipped {
        (Box::new(MultiGzDecoder::new(Counted { inner: std::io::Cursor::new(magic).chain(file), progress })), None)
    } else {
        progress.add_bytes(magic.len() as u64);
        block.extend_from_slice(&magic);
        (file, Some(progress))
    };

    let mut end = fill(&mut reader, &mut block, BLOCK, counted).map_err(read_error)?;
    // Where the block starts in the file, for a plain file (read again by offset).
    let mut at = (!gzipped && path.as_os_str() != "-").then_some(0u64);
    if end || !first_line_is_json(&block) {
        // Small after all (standard input), or one document: read whole, as a small file is.
        let rest = reader.read_to_end(&mut block).map_err(read_error)?;
        counted.inspect(|p| p.add_bytes(rest as u64));
        return Ok(send(Work::Whole { input, bytes: Some(block) }));
    }
    loop {
        // Cut after the last complete line; a line longer than a block makes the block longer.
        let cut = match memchr::memrchr(b'\n', &block) {
            Some(newline) if !end => newline + 1,
            _ if !end => {
                end = fill(&mut reader, &mut block, BLOCK, counted).map_err(read_error)?;
                continue;
            }
            _ => block.len(),
        };
        let mut rest = buffers.take();
        rest.extend_from_slice(block.get(cut..).unwrap_or_default());
        block.truncate(cut);
        let next = at.map(|at| at + cut as u64);
        if !send(Work::Lines { input, bytes: block, at }) {
            return Ok(false);
        }
        at = next;
        block = rest;
        if end {
            return Ok(send(Work::End { input, error: None }));
        }
        end = fill(&mut reader, &mut block, BLOCK, counted).map_err(read_error)?;
        if end && block.is_empty() {
            return Ok(send(Work::End { input, error: None }));
        }
    }
}

/// Reads until `block` holds `more` bytes more or the input ends (`true`), counting what it read when asked.
fn fill(reader: &mut dyn Read, block: &mut Vec<u8>, more: usize, counted: Option<&Progress>) -> std::io::Result<bool> {
    block.reserve(more);
    let read = reader.take(more as u64).read_to_end(block)?;
    counted.inspect(|p| p.add_bytes(read as u64));
    Ok(read < more)
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
        produce(std::slice::from_ref(&dir), &Progress::hidden(None, None), &Buffers::default(), |w| {
            all.push(w);
            true
        });
        std::fs::remove_file(&dir).unwrap();
        all
    }

    #[test]
    fn a_large_json_lines_file_is_cut_at_line_ends() {
        let line = format!("{{\"n\":\"{}\"}}\n", "x".repeat(1000));
        let count = 3 * BLOCK / line.len() + 7;
        let bytes = line.repeat(count);
        let work = pieces(bytes.as_bytes());
        let mut lines = 0;
        let mut blocks = 0;
        for piece in &work {
            if let Work::Lines { bytes, .. } = piece {
                assert!(bytes.ends_with(b"\n") && bytes.starts_with(b"{"), "cut at a line end");
                lines += bytes.iter().filter(|b| **b == b'\n').count();
                blocks += 1;
            }
        }
        assert_eq!(lines, count, "every line once");
        assert!(blocks >= 3, "{blocks} blocks");
        assert!(matches!(work.last(), Some(Work::End { error: None, .. })));
    }

    #[test]
    fn a_large_document_and_a_small_file_are_read_whole() {
        let document = format!("{{\"Records\": [\n{}{{}}]}}", "{\"a\": 1},\n".repeat(BLOCK / 5));
        let work = pieces(document.as_bytes());
        assert!(
            matches!(work.as_slice(), [Work::Whole { bytes: Some(b), .. }] if b.len() == document.len()),
            "one piece, which counts the file once"
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
