//! Cutting the inputs into pieces of work, in order.
//!
//! A file small enough to hold (every CloudTrail log file) is one piece, read and decompressed by a worker, so
//! that many files inflate in parallel. A large file or standard input is streamed: read (and inflated) here in
//! blocks cut at line ends, each block a piece, so that the lines of one file are evaluated in parallel and only
//! a few blocks are ever in memory. A large plain JSON-lines file is cut into byte ranges after its first block,
//! and each worker reads its own range ([`with_lines_at`]): the bytes land in the cache of the core that reads
//! them next, and no thread reads for the others. A large input that is not JSON lines (one huge log document)
//! is read whole.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
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
    /// The JSON lines of a plain file that start in `at..at + len`, for the worker to read ([`with_lines_at`]).
    Range { input: usize, file: Arc<File>, at: u64, len: u64 },
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
    let opened = match path.as_os_str() == "-" {
        true => None,
        false => Some(Arc::new(File::open(path).map_err(|e| e.to_string())?)),
    };
    let mut file: Box<dyn Read> = match &opened {
        // Read here from the file's own position; the workers read by offset.
        Some(opened) => Box::new(&**opened),
        None => Box::new(std::io::stdin()),
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
        if let Some((next, opened)) = next.zip(opened.as_ref()).filter(|_| !gzipped && !end) {
            // The bytes read past the cut were counted already.
            let counted = rest.len() as u64;
            buffers.give(rest);
            return ranges(input, opened, next, counted, progress, send);
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

/// Hands the rest of a plain file, from `from`, to the workers as ranges of a block each, up to the size it has now
/// (and the line that crosses it); `counted` of its bytes are counted as read already.
fn ranges(
    input: usize,
    file: &Arc<File>,
    from: u64,
    mut counted: u64,
    progress: &Progress,
    send: &mut impl FnMut(Work) -> bool,
) -> Result<bool, String> {
    let size = file.metadata().map_err(|e| e.to_string())?.len();
    let mut at = from;
    while at < size {
        let len = (BLOCK as u64).min(size - at);
        progress.add_bytes(len.saturating_sub(counted));
        counted = counted.saturating_sub(len);
        if !send(Work::Range { input, file: file.clone(), at, len }) {
            return Ok(false);
        }
        at += len;
    }
    Ok(send(Work::End { input, error: None }))
}

thread_local! {
    /// A worker's buffer for the ranges it reads: grown when too short, never cleared, so that memory once
    /// touched is neither given back nor zeroed again.
    static RANGE: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// How much is read at a time to find where a line starts or ends.
const PROBE: usize = 4 << 10;

/// Calls `read` with the lines of `file` that start in `at..at + len`, the last one to its end (or the file's),
/// and where the first starts. Every line of a file is in exactly one of its ranges: a line starts at 0 or just
/// after a `\n`. A line that starts before the range and ends after it leaves the range empty.
pub fn with_lines_at<R>(file: &File, at: u64, len: u64, read: impl FnOnce(u64, &[u8]) -> R) -> std::io::Result<R> {
    RANGE.with(|buffer| match buffer.try_borrow_mut() {
        Ok(mut buffer) => lines_at(file, at, len, &mut buffer).map(|(start, lines)| read(start, lines)),
        // Not reached (`read` does not read ranges); a fresh buffer if it ever is.
        Err(_) => lines_at(file, at, len, &mut Vec::new()).map(|(start, lines)| read(start, lines)),
    })
}

/// [`with_lines_at`]'s lines, read into `buffer`.
fn lines_at<'b>(file: &File, at: u64, len: u64, buffer: &'b mut Vec<u8>) -> std::io::Result<(u64, &'b [u8])> {
    let end = at.saturating_add(len);
    // The first line starts after the first `\n` from the byte before the range on.
    let mut start = at;
    if at > 0 {
        start = at - 1;
        loop {
            let got = fill_at(file, start, buffer, 0, PROBE)?;
            let probe = buffer.get(..got).unwrap_or_default();
            if let Some(newline) = memchr::memchr(b'\n', probe) {
                start += newline as u64 + 1;
                break;
            }
            start += got as u64;
            if got == 0 || start >= end {
                return Ok((start, &[]));
            }
        }
    }
    if start >= end {
        return Ok((start, &[]));
    }
    let mut filled = fill_at(file, start, buffer, 0, (end - start) as usize)?;
    // The last line to its end.
    while buffer.get(..filled).and_then(|lines| lines.last()).is_some_and(|last| *last != b'\n') {
        let got = fill_at(file, start + filled as u64, buffer, filled, PROBE)?;
        let newline = memchr::memchr(b'\n', buffer.get(filled..filled + got).unwrap_or_default());
        filled += newline.map_or(got, |newline| newline + 1);
        if got == 0 || newline.is_some() {
            break;
        }
    }
    Ok((start, buffer.get(..filled).unwrap_or_default()))
}

/// Reads up to `want` bytes of `file` at `at` into `buffer` from `from` on, until the file ends; how many it read.
fn fill_at(file: &File, at: u64, buffer: &mut Vec<u8>, from: usize, want: usize) -> std::io::Result<usize> {
    if buffer.len() < from + want {
        buffer.resize(from + want, 0);
    }
    let mut got = 0;
    while got < want {
        match file.read_at(buffer.get_mut(from + got..from + want).unwrap_or_default(), at + got as u64) {
            Ok(0) => break,
            Ok(read) => got += read,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
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
        let mut ranges = 0;
        for piece in &work {
            let mut count_lines = |bytes: &[u8]| {
                assert!(bytes.ends_with(b"\n") && bytes.starts_with(b"{"), "cut at a line end");
                lines += bytes.iter().filter(|b| **b == b'\n').count();
                blocks += 1;
            };
            match piece {
                Work::Lines { bytes, .. } => count_lines(bytes),
                Work::Range { file, at, len, .. } => {
                    ranges += 1;
                    with_lines_at(file, *at, *len, |_, bytes| count_lines(bytes)).unwrap();
                }
                _ => {}
            }
        }
        assert_eq!(lines, count, "every line once");
        assert!(blocks >= 3 && ranges >= 2, "{blocks} blocks, {ranges} of them ranges the workers read");
        assert!(matches!(work.last(), Some(Work::End { error: None, .. })));
    }

    /// Ranges cut anywhere, even inside a line longer than a range, hand every line of a file to exactly one
    /// range, whole, with where it starts; a last line without its end is read to the file's end.
    #[test]
    fn ranges_hold_every_line_once_wherever_they_are_cut() {
        let mut text = Vec::new();
        for i in 0..400 {
            let length = [1, 7, 300, 5_000, 40][i % 5] + i;
            text.extend(format!("{{\"n\":\"{}\"}}\n", "z".repeat(length)).bytes());
        }
        text.extend(b"{\"last\":\"without an end\"}");
        let path = std::env::temp_dir().join(format!("trailguard-ranges-{}", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let file = File::open(&path).unwrap();
        for width in [3, 9, 333, PROBE - 1, PROBE + 1, 3 * PROBE, 100_000] {
            let mut read = Vec::new();
            for at in (0..text.len() as u64).step_by(width) {
                with_lines_at(&file, at, width as u64, |start, lines| {
                    if !lines.is_empty() {
                        assert_eq!(text.get(start as usize..start as usize + lines.len()), Some(lines));
                        assert!(start == 0 || text.get(start as usize - 1) == Some(&b'\n'), "a line's start");
                        assert!((at..at + width as u64).contains(&start), "starts in its range");
                    }
                    read.extend_from_slice(lines);
                })
                .unwrap();
            }
            assert!(read == text, "every byte once, in order, with ranges of {width}");
        }
        std::fs::remove_file(&path).unwrap();
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
