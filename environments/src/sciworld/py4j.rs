//! A minimal client of the py4j text protocol, enough to drive a JVM-side object from Rust.
//!
//! A [`Gateway`] starts `java -cp <jar> py4j.GatewayServer --die-on-broken-pipe 0` (the JVM exits
//! when our end of its stdin closes, so it cannot outlive this process), reads the port from its
//! first stdout line, keeps draining stdout and stderr (the JVM blocks once a pipe fills), and
//! talks to it over one TCP connection on loopback:
//!
//! ```text
//! i\n<class>\ne\n                         -> !yro0          construct
//! c\n<target>\n<method>\n<args>e\n         -> !y<type><value> call (args: s<text>\n, i<int>\n, b<bool>\n, r<id>\n;
//!                                                  a static method's target is z:<class>)
//! m\nd\n<id>\ne\n                           -> !yv             release an object
//! ```
//! Answers are `!y` + type (`s` string, `i` int, `d` double, `b` bool, `v` void, `n` null, `r`
//! object, `l` list) or `!x` + an error. Strings are escaped (`\\`, `\n`, `\r`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

/// A py4j failure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Py4jError {
    /// The JVM could not be started or did not announce its port.
    #[error("could not start the JVM: {0}")]
    Start(String),
    /// The connection closed: the JVM died.
    #[error("the JVM closed the connection (it died); its last output: {0}")]
    Closed(String),
    /// No answer within the call timeout: the JVM hangs.
    #[error("no answer from the JVM within {0:?}")]
    Timeout(Duration),
    /// A socket error.
    #[error("I/O error talking to the JVM: {0}")]
    Io(String),
    /// The JVM raised an exception.
    #[error("the JVM raised: {0}")]
    Java(String),
    /// The JVM raised an exception and answered with a reference to it (py4j's `!xr` answer);
    /// the gateway turns it into [`Py4jError::Java`] with the exception's text.
    #[error("the JVM raised the exception object {0}")]
    JavaObject(String),
    /// An answer this client does not understand.
    #[error("unexpected py4j answer {0:?}")]
    Protocol(String),
}

/// A call argument.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Arg<'a> {
    /// A string.
    Str(&'a str),
    /// An integer.
    Int(i64),
    /// A boolean.
    Bool(bool),
    /// A JVM object held by the gateway (its target id, e.g. `o3`).
    Ref(&'a str),
}

/// A decoded answer.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// `void`.
    Void,
    /// `null`.
    Null,
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
    /// A double.
    Double(f64),
    /// A boolean.
    Bool(bool),
    /// A reference to a JVM object (its target id, e.g. `o3`).
    Object(String),
    /// A reference to a JVM list (its target id).
    List(String),
}

/// Escapes a string argument as py4j does.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// Reverses [`escape`].
pub fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Decodes one answer line (without its newline).
pub fn decode(line: &str) -> Result<Value, Py4jError> {
    if let Some(err) = line.strip_prefix("!x") {
        if let Some(id) = err.strip_prefix('r') {
            // The exception itself, as an object the JVM keeps: its message is asked for and
            // the object released by the gateway (`exchange`).
            return Err(Py4jError::JavaObject(id.to_owned()));
        }
        let text = err.strip_prefix('s').unwrap_or(err);
        let first = unescape(text);
        return Err(Py4jError::Java(first.lines().next().unwrap_or("").to_owned()));
    }
    let Some(body) = line.strip_prefix("!y") else {
        return Err(Py4jError::Protocol(line.chars().take(200).collect()));
    };
    let (kind, rest) = body.split_at(body.chars().next().map_or(0, char::len_utf8));
    let bad = || Py4jError::Protocol(line.chars().take(200).collect());
    Ok(match kind {
        "v" => Value::Void,
        "n" => Value::Null,
        "s" => Value::Str(unescape(rest)),
        "i" | "L" => Value::Int(rest.parse().map_err(|_| bad())?),
        "d" => Value::Double(rest.parse().map_err(|_| bad())?),
        "b" => Value::Bool(match rest {
            "true" | "True" => true,
            "false" | "False" => false,
            _ => return Err(bad()),
        }),
        "r" => Value::Object(rest.to_owned()),
        "l" => Value::List(rest.strip_prefix('o').map_or_else(|| rest.to_owned(), |id| format!("o{id}"))),
        _ => return Err(bad()),
    })
}

/// The last bytes a JVM wrote to stderr, kept for error messages.
type Tail = Arc<Mutex<VecDeque<u8>>>;

const TAIL_BYTES: usize = 4096;

fn drain(mut from: impl Read, tail: Option<Tail>) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if let Some(t) = &tail {
                    if let Ok(mut t) = t.lock() {
                        t.extend(&buf[..n]);
                        while t.len() > TAIL_BYTES {
                            t.pop_front();
                        }
                    }
                }
            }
        }
    }
}

/// A running JVM with a py4j gateway, and one connection to it. Dropping it kills the JVM.
pub struct Gateway {
    child: Child,
    _stdin: ChildStdin,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    timeout: Duration,
    stderr_tail: Tail,
    broken: bool,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway").field("pid", &self.child.id()).finish_non_exhaustive()
    }
}

impl Gateway {
    /// Starts `java <jvm_options> -cp <jar_dir>/<jar> py4j.GatewayServer --die-on-broken-pipe 0` in `jar_dir`
    /// and connects. `timeout` bounds every call; start-up gets `startup` to announce its port.
    pub fn spawn(
        java: &Path,
        jvm_options: &[&str],
        jar_dir: &Path,
        jar: &str,
        timeout: Duration,
        startup: Duration,
    ) -> Result<Self, Py4jError> {
        let mut child = Command::new(java)
            .args(jvm_options)
            .arg("-cp")
            .arg(jar)
            .arg("py4j.GatewayServer")
            .arg("--die-on-broken-pipe")
            .arg("0")
            .current_dir(jar_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Py4jError::Start(format!("{} -cp {jar}: {e}", java.display())))?;
        let stdin = child.stdin.take().ok_or_else(|| Py4jError::Start("no stdin".into()))?;
        let stdout = child.stdout.take().ok_or_else(|| Py4jError::Start("no stdout".into()))?;
        let stderr = child.stderr.take().ok_or_else(|| Py4jError::Start("no stderr".into()))?;
        let stderr_tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
        let tail = stderr_tail.clone();
        std::thread::Builder::new()
            .name("jvm-stderr".into())
            .spawn(move || drain(stderr, Some(tail)))
            .map_err(|e| Py4jError::Start(e.to_string()))?;
        let (port_tx, port_rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("jvm-stdout".into())
            .spawn(move || {
                let mut out = BufReader::new(stdout);
                let mut first = String::new();
                let _ = out.read_line(&mut first);
                let _ = port_tx.send(first);
                drain(out, None);
            })
            .map_err(|e| Py4jError::Start(e.to_string()))?;
        let fail = |child: &mut Child, tail: &Tail, why: String| {
            let _ = child.kill();
            let _ = child.wait();
            Py4jError::Start(format!("{why}; stderr: {}", tail_text(tail)))
        };
        let first = match port_rx.recv_timeout(startup) {
            Ok(l) => l,
            Err(_) => return Err(fail(&mut child, &stderr_tail, format!("no port announced within {startup:?}"))),
        };
        let port: u16 = match first.trim().parse() {
            Ok(p) => p,
            Err(_) => return Err(fail(&mut child, &stderr_tail, format!("expected a port, got {:?}", first.trim()))),
        };
        let stream = match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => s,
            Err(e) => return Err(fail(&mut child, &stderr_tail, format!("connect to port {port}: {e}"))),
        };
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(timeout)).map_err(|e| Py4jError::Io(e.to_string()))?;
        let writer = stream.try_clone().map_err(|e| Py4jError::Io(e.to_string()))?;
        Ok(Gateway { child, _stdin: stdin, reader: BufReader::new(stream), writer, timeout, stderr_tail, broken: false })
    }

    /// The JVM's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether an earlier call failed at the transport level (the gateway must be replaced).
    pub fn is_broken(&self) -> bool {
        self.broken
    }

    fn exchange(&mut self, command: &str) -> Result<Value, Py4jError> {
        if self.broken {
            return Err(Py4jError::Closed("the gateway already failed".into()));
        }
        let result = match self.exchange_inner(command) {
            Err(Py4jError::JavaObject(id)) => Err(self.java_exception(&id)),
            other => other,
        };
        if matches!(result, Err(Py4jError::Closed(_) | Py4jError::Timeout(_) | Py4jError::Io(_))) {
            self.broken = true;
        }
        result
    }

    /// The exception object `id` as [`Py4jError::Java`] with its `toString()` (class and
    /// message, as py4j's Python client shows a `Py4JJavaError`), released afterwards.
    fn java_exception(&mut self, id: &str) -> Py4jError {
        let message = match self.exchange_inner(&format!("c\n{id}\ntoString\ne\n")) {
            Ok(Value::Str(s)) => s,
            Ok(other) => format!("an exception whose toString() answered {other:?}"),
            Err(e @ (Py4jError::Closed(_) | Py4jError::Timeout(_) | Py4jError::Io(_))) => return e,
            Err(e) => format!("an exception whose message could not be read: {e}"),
        };
        if let Err(e) = self.exchange_inner(&format!("m\nd\n{id}\ne\n")) {
            tracing::debug!(error = %e, id, "a Java exception object could not be released");
        }
        Py4jError::Java(message)
    }

    fn exchange_inner(&mut self, command: &str) -> Result<Value, Py4jError> {
        if let Err(e) = self.writer.write_all(command.as_bytes()).and_then(|_| self.writer.flush()) {
            return Err(match e.kind() {
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset => {
                    Py4jError::Closed(tail_text(&self.stderr_tail))
                }
                _ => Py4jError::Io(e.to_string()),
            });
        }
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => Err(Py4jError::Closed(tail_text(&self.stderr_tail))),
            Ok(_) => decode(line.trim_end_matches(['\n', '\r'])),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {
                Err(Py4jError::Timeout(self.timeout))
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Err(Py4jError::Closed(tail_text(&self.stderr_tail))),
            Err(e) => Err(Py4jError::Io(e.to_string())),
        }
    }

    /// Constructs a JVM object of `class`; returns its target id.
    pub fn construct(&mut self, class: &str) -> Result<String, Py4jError> {
        match self.exchange(&format!("i\n{class}\ne\n"))? {
            Value::Object(id) => Ok(id),
            other => Err(Py4jError::Protocol(format!("constructor answered {other:?}"))),
        }
    }

    /// Calls `method` on the object `target` with `args`.
    pub fn call(&mut self, target: &str, method: &str, args: &[Arg<'_>]) -> Result<Value, Py4jError> {
        let mut cmd = format!("c\n{target}\n{method}\n");
        for a in args {
            match a {
                Arg::Str(s) => {
                    cmd.push('s');
                    cmd.push_str(&escape(s));
                }
                Arg::Int(i) => cmd.push_str(&format!("i{i}")),
                Arg::Bool(b) => cmd.push_str(if *b { "btrue" } else { "bfalse" }),
                Arg::Ref(id) => {
                    cmd.push('r');
                    cmd.push_str(id);
                }
            }
            cmd.push('\n');
        }
        cmd.push_str("e\n");
        self.exchange(&cmd)
    }

    /// Calls the static `method` of `class` (py4j's `z:` targets).
    pub fn call_static(&mut self, class: &str, method: &str, args: &[Arg<'_>]) -> Result<Value, Py4jError> {
        self.call(&format!("z:{class}"), method, args)
    }

    /// Lets the JVM forget the object `id` (py4j's memory command, as the Python client's garbage
    /// collection sends it). Objects never released stay alive for the JVM's lifetime.
    pub fn release(&mut self, id: &str) -> Result<(), Py4jError> {
        match self.exchange(&format!("m\nd\n{id}\ne\n"))? {
            Value::Void => Ok(()),
            other => Err(Py4jError::Protocol(format!("release answered {other:?}"))),
        }
    }

    /// Reads a JVM list of strings that contain no newline in one call (`String.join`), keeping
    /// the list's order, and releases the list.
    pub fn joined_string_list(&mut self, list: &str) -> Result<Vec<String>, Py4jError> {
        let joined = match self.call_static("java.lang.String", "join", &[Arg::Str("\n"), Arg::Ref(list)])? {
            Value::Str(s) => s,
            other => return Err(Py4jError::Protocol(format!("String.join answered {other:?}"))),
        };
        self.release(list)?;
        Ok(if joined.is_empty() { Vec::new() } else { joined.split('\n').map(str::to_owned).collect() })
    }
}

fn tail_text(t: &Tail) -> String {
    let bytes: Vec<u8> = t.lock().map(|t| t.iter().copied().collect()).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    if text.is_empty() {
        "(nothing)".to_owned()
    } else {
        text.lines().rev().take(5).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.writer.shutdown(std::net::Shutdown::Both);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_round_trips() {
        for s in ["plain", "two\nlines", "back\\slash\\n", "cr\r\n", "tab\tand ünïcode"] {
            assert_eq!(unescape(&escape(s)), s);
        }
        assert_eq!(escape("a\nb"), "a\\nb");
    }

    #[test]
    fn answers_decode() {
        assert_eq!(decode("!yro0").unwrap(), Value::Object("o0".into()));
        assert_eq!(decode("!ylo12").unwrap(), Value::List("o12".into()));
        assert_eq!(decode("!ysline\\nnext").unwrap(), Value::Str("line\nnext".into()));
        assert_eq!(decode("!ys").unwrap(), Value::Str(String::new()));
        assert_eq!(decode("!yd-1.0").unwrap(), Value::Double(-1.0));
        assert_eq!(decode("!yi39").unwrap(), Value::Int(39));
        assert_eq!(decode("!ybtrue").unwrap(), Value::Bool(true));
        assert_eq!(decode("!yv").unwrap(), Value::Void);
        assert!(matches!(decode("!xro5"), Err(Py4jError::JavaObject(id)) if id == "o5"));
        assert!(matches!(decode("!xro5"), Err(Py4jError::JavaObject(id)) if id == "o5"));
        let e = decode("!xspy4j.Py4JException: Method x([]) does not exist\\n\\tat py4j...").unwrap_err();
        assert_eq!(e, Py4jError::Java("py4j.Py4JException: Method x([]) does not exist".into()));
        assert!(matches!(decode("garbage"), Err(Py4jError::Protocol(_))));
        assert!(matches!(decode("!ybmaybe"), Err(Py4jError::Protocol(_))));
    }
}
