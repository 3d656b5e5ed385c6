//! A training node on another machine: the server `eef train-node` runs ([`serve`]) and the
//! driver's handle on it ([`RemoteNode`]). The protocol is in [`super::wire`].

use std::io::{BufReader, BufWriter};
use std::net::{TcpListener, TcpStream};

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};

use super::super::kernels::LmAutodiffBackend;
use super::super::llama::Llama;
use super::super::train::{OptimRecord, Trainer};
use super::cluster::Global;
use super::wire::{self, Hello, Request};
use super::Peers;

fn recorder() -> NamedMpkBytesRecorder<FullPrecisionSettings> {
    NamedMpkBytesRecorder::new()
}

/// The driver's connection to one `eef train-node`, for one training phase.
pub struct RemoteNode {
    addr: String,
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    /// The node's devices (its peers in the group).
    pub devices: usize,
}

impl std::fmt::Debug for RemoteNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteNode").field("addr", &self.addr).field("devices", &self.devices).finish_non_exhaustive()
    }
}

impl RemoteNode {
    /// Connects to the node at `addr`, hands it `hello` and the model and optimizer records
    /// ([`records`]), and waits until it has loaded them.
    pub fn connect(addr: &str, hello: &Hello, (model, optim): (&[u8], &[u8])) -> Result<Self, String> {
        let fail = |e: String| format!("training node {addr}: {e}");
        let stream = TcpStream::connect(addr).map_err(|e| fail(format!("{e} (is `eef train-node --listen {addr}` running there?)")))?;
        let (mut reader, mut writer) = wire::split(stream).map_err(|e| fail(e.to_string()))?;
        wire::send(&mut writer, hello).map_err(fail)?;
        wire::write_frame(&mut writer, model).map_err(|e| fail(e.to_string()))?;
        wire::write_frame(&mut writer, optim).map_err(|e| fail(e.to_string()))?;
        let devices = match wire::recv::<Result<usize, String>>(&mut reader).map_err(fail)? {
            Some(Ok(0)) => return Err(fail("has no devices".into())),
            Some(Ok(n)) => n,
            Some(Err(e)) => return Err(fail(e)),
            None => return Err(fail("closed the connection before joining".into())),
        };
        Ok(RemoteNode { addr: addr.to_string(), reader, writer, devices })
    }

    /// Sends `request` (answered later by [`RemoteNode::answer`]).
    pub fn send(&mut self, request: &Request) -> Result<(), String> {
        wire::send(&mut self.writer, request).map_err(|e| format!("training node {}: {e}", self.addr))
    }

    /// The node's answer to the last request.
    pub fn answer(&mut self) -> Result<f32, String> {
        match wire::recv::<Result<f32, String>>(&mut self.reader) {
            Ok(Some(r)) => r.map_err(|e| format!("training node {}: {e}", self.addr)),
            Ok(None) => Err(format!("training node {} closed the connection", self.addr)),
            Err(e) => Err(format!("training node {}: {e}", self.addr)),
        }
    }

    /// Ends the node's part of the group (it finishes its collective and waits for the next).
    pub fn close(self) {
        let _ = self.writer.get_ref().shutdown(std::net::Shutdown::Both);
    }
}

/// `trainer`'s model and optimizer state as the byte records a node loads (full precision, with
/// the parameter ids the optimizer state and the all-reduce's order go by).
pub fn records<B: LmAutodiffBackend>(trainer: &Trainer<B>) -> Result<(Vec<u8>, Vec<u8>), String> {
    let model = recorder().record(trainer.model().clone().into_record(), ()).map_err(|e| format!("recording the model: {e}"))?;
    let optim = recorder().record(trainer.optimizer_record(), ()).map_err(|e| format!("recording the optimizer state: {e}"))?;
    Ok((model, optim))
}

/// Serves training phases on `listener` until the process ends: each connection is a driver's
/// phase, in which this node trains data-parallel on `devices` and takes part in the driver's
/// group through burn-collective's global level, its tensor-data service at `address`
/// (`ws://HOST:PORT` as the other machines reach it). A phase that fails is reported to its
/// driver (or, after a panic, its connection closes) and logged; the node then waits for the
/// next.
pub fn serve<B: LmAutodiffBackend>(listener: TcpListener, devices: Vec<B::Device>, address: &str) {
    for stream in listener.incoming() {
        let Ok(stream) = stream else { continue };
        let peer = stream.peer_addr().map(|a| a.to_string()).unwrap_or_default();
        tracing::info!(driver = %peer, "training phase");
        // A phase that panics (a bad token id in a shard, an out-of-memory) ends that phase, not
        // the node: the driver sees the connection close, and the next phase starts afresh.
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| phase::<B>(stream, &devices, address))) {
            Ok(Ok(steps)) => tracing::info!(driver = %peer, steps, "training phase done"),
            Ok(Err(e)) => tracing::warn!(driver = %peer, "training phase failed: {e}"),
            Err(_) => tracing::warn!(driver = %peer, "training phase panicked"),
        }
    }
}

/// One training phase with a driver: load the model and optimizer state, then answer requests
/// until the driver closes the connection. Returns the optimizer steps this phase took.
fn phase<B: LmAutodiffBackend>(stream: TcpStream, devices: &[B::Device], address: &str) -> Result<usize, String> {
    let (mut reader, mut writer) = wire::split(stream).map_err(|e| e.to_string())?;
    let hello: Hello = wire::recv(&mut reader)?.ok_or("the driver closed the connection")?;
    let model = wire::read_frame(&mut reader).map_err(|e| e.to_string())?.ok_or("no model record")?;
    let optim = wire::read_frame(&mut reader).map_err(|e| e.to_string())?.ok_or("no optimizer record")?;
    let mut trainer = match load::<B>(&hello, model, optim, &devices[0]) {
        Ok(t) => t,
        Err(e) => {
            let _ = wire::send(&mut writer, &Err::<usize, String>(e.clone()));
            return Err(e);
        }
    };
    wire::send(&mut writer, &Ok::<usize, String>(devices.len()))?;
    let global = Global { nodes: hello.nodes, orchestrator: hello.orchestrator.clone(), address: address.to_string() };
    let start = trainer.step;
    let _turn = super::turn();
    super::group(&mut trainer, devices, hello.pad, Some(&global), Vec::new(), |trainer, peers| -> Result<(), String> {
        let peers = peers.ok_or("a node trains in a group")?;
        while let Some(request) = wire::recv::<Request>(&mut reader)? {
            let answer = answer(trainer, peers, request);
            let failed = answer.is_err();
            wire::send(&mut writer, &answer)?;
            if failed {
                return answer.map(|_| ());
            }
        }
        Ok(())
    })??;
    Ok(trainer.step - start)
}

/// The model (rebuilt from its shape, then given the driver's values and parameter ids) and a
/// trainer holding the driver's optimizer state and counters.
fn load<B: LmAutodiffBackend>(hello: &Hello, model: Vec<u8>, optim: Vec<u8>, device: &B::Device) -> Result<Trainer<B>, String> {
    hello.config.validate()?;
    let mut skeleton = Llama::<B>::new(&hello.config, device);
    if let Some(lora) = &hello.lora {
        skeleton = skeleton.with_lora(lora, 0);
    }
    let record = recorder().load(model, device).map_err(|e| format!("the model record does not load: {e}"))?;
    let model = skeleton.load_record(record);
    let optim: OptimRecord<B> = recorder().load(optim, device).map_err(|e| format!("the optimizer record does not load: {e}"))?;
    let mut trainer = Trainer::new(model.clone(), hello.settings.clone());
    trainer.restore_model(model, optim, hello.step, hello.micro);
    Ok(trainer)
}

fn answer<B: LmAutodiffBackend>(trainer: &mut Trainer<B>, peers: &Peers<B>, request: Request) -> Result<f32, String> {
    match request {
        Request::Accumulate(seqs, weights) => peers.accumulate(trainer, &seqs, &weights),
        Request::EndMicro => peers.end_micro(trainer).map(|()| 0.0),
        Request::Step => peers.step(trainer).map(|()| 0.0),
    }
}

/// `eef train-node`: serves training phases on `listen` (`HOST:PORT`) with the backend and
/// precision of `settings` on `devices` (indices as in `[policy.train] devices`; empty: those
/// `settings` lists, or its one device), the tensor-data service at `address`. Prints
/// `listening on HOST:PORT` (with port 0, the port picked), then serves until the process ends.
pub fn run_node(settings: &super::super::LmSettings, devices: &[usize], listen: &str, address: &str) -> Result<(), String> {
    super::cluster::port_of(address).map_err(|e| format!("--address: {e}"))?;
    let listener = TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let devices: Vec<usize> = if devices.is_empty() { settings.train.devices.clone() } else { devices.to_vec() };
    struct Serve(TcpListener, String, std::net::SocketAddr);
    impl super::super::backend::BackendVisitor for Serve {
        type Output = ();
        fn visit<B: LmAutodiffBackend>(self, name: &str, device: B::Device) {
            self.visit_devices::<B>(name, vec![device])
        }
        fn visit_devices<B: LmAutodiffBackend>(self, name: &str, devices: Vec<B::Device>) {
            let n = devices.len();
            println!("listening on {} ({name}, {n} device{})", self.2, if n == 1 { "" } else { "s" });
            use std::io::Write;
            let _ = std::io::stdout().flush();
            serve::<B>(self.0, devices, &self.1)
        }
    }
    super::super::backend::visit_devices(settings.backend_choice(), &devices, Serve(listener, address.to_string(), bound)).map_err(|e| e.to_string())
}
