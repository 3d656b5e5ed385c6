//! The connection between a training driver and an `eef train-node`: length-prefixed frames over
//! TCP, each JSON (the messages below) or raw bytes (burn records).
//!
//! A session is: the driver sends a [`Hello`], then the model record and the optimizer record as
//! two byte frames; the node answers `Result<usize, String>` (its device count, or why it cannot
//! take part); then the driver sends [`Request`]s, each answered by `Result<f32, String>`, until
//! it closes the connection, which ends the node's part of the group.

use std::io::{BufReader, BufWriter, Read, Write};
use std::net::TcpStream;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::super::config::LlamaConfig;
use super::super::lora::LoraSettings;
use super::super::train::TrainSettings;
use super::Window;

/// The largest frame accepted (a model record is one frame): 64 GiB.
const MAX_FRAME: u64 = 64 << 30;

/// What a node needs to join a group: the model's shape (to rebuild the module the records load
/// into), the training settings and counters, and burn-collective's global parameters.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hello {
    /// This node's index among the group's nodes (the driver is node 0).
    pub node: u32,
    /// Nodes in the group, the driver included.
    pub nodes: u32,
    /// burn-collective's global orchestrator (`ws://host:port`).
    pub orchestrator: String,
    /// The architecture of the model being trained.
    pub config: LlamaConfig,
    /// Its adapters, when only they train.
    pub lora: Option<LoraSettings>,
    /// The optimisation settings (learning-rate schedule, clipping, accumulation).
    pub settings: TrainSettings,
    /// The padding token id.
    pub pad: u32,
    /// Optimizer steps already taken.
    pub step: usize,
    /// Micro-batches already trained.
    pub micro: usize,
}

/// Work the driver asks of every other peer, in-process or on a node.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Request {
    /// Backpropagate `Σ weights[s] · NLL_s` over these windows (see
    /// [`super::super::train::Trainer::accumulate_weighted`]); answer the value.
    Accumulate(Vec<Window>, Vec<f32>),
    /// End the micro-batch ([`super::super::train::Trainer::end_micro`]): an all-reduced step at
    /// the boundary.
    EndMicro,
    /// An all-reduced optimizer step now ([`super::super::train::Trainer::apply_step`]).
    Step,
}

/// The two buffered halves of a session's connection (small frames go out at once: no Nagle
/// delay).
pub fn split(stream: TcpStream) -> std::io::Result<(BufReader<TcpStream>, BufWriter<TcpStream>)> {
    stream.set_nodelay(true)?;
    let writer = BufWriter::new(stream.try_clone()?);
    Ok((BufReader::new(stream), writer))
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(&(bytes.len() as u64).to_le_bytes())?;
    w.write_all(bytes)?;
    w.flush()
}

/// Reads one frame; `Ok(None)` when the peer closed the connection between frames.
pub fn read_frame(r: &mut impl Read) -> std::io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 8];
    match r.read_exact(&mut len) {
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        other => other?,
    }
    let len = u64::from_le_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, format!("a frame of {len} bytes (more than {MAX_FRAME}): not an eef train-node peer")));
    }
    let mut bytes = vec![0u8; len as usize];
    r.read_exact(&mut bytes)?;
    Ok(Some(bytes))
}

/// Sends `value` as a JSON frame.
pub fn send<T: Serialize>(w: &mut impl Write, value: &T) -> Result<(), String> {
    let json = serde_json::to_vec(value).map_err(|e| e.to_string())?;
    write_frame(w, &json).map_err(|e| e.to_string())
}

/// Receives a JSON frame; `Ok(None)` when the peer closed the connection.
pub fn recv<T: DeserializeOwned>(r: &mut impl Read) -> Result<Option<T>, String> {
    match read_frame(r).map_err(|e| e.to_string())? {
        Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| format!("an unreadable message: {e}")),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_closed_connection_reads_as_none() {
        let mut buf = Vec::new();
        send(&mut buf, &Request::Accumulate(vec![Window::single(vec![1, 2], vec![false, true])], vec![0.5])).unwrap();
        write_frame(&mut buf, b"record").unwrap();
        let mut r = &buf[..];
        assert!(matches!(recv::<Request>(&mut r).unwrap(), Some(Request::Accumulate(s, w)) if s[0].ids == [1, 2] && w == [0.5]));
        assert_eq!(read_frame(&mut r).unwrap().unwrap(), b"record");
        assert!(recv::<Request>(&mut r).unwrap().is_none());
    }

    #[test]
    fn an_oversized_length_is_refused() {
        let bytes = u64::MAX.to_le_bytes();
        assert!(read_frame(&mut &bytes[..]).unwrap_err().to_string().contains("not an eef train-node"));
    }
}
