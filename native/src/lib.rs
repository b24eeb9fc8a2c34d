//! Avro binary decoding (and encoding) for one writer schema, straight between bytes and Python objects.
//!
//! fastavro's reader pulls every varint and string through a Python file object, which made
//! decoding an alert the largest single cost of the broker. This reads the bytes directly and
//! builds the same values fastavro builds: dicts for records, lists, str, bytes, int, float,
//! None, tz-aware UTC datetimes for timestamp-millis/micros and dates for date. It refuses
//! what a strict Avro reader refuses (an `int` beyond 32 bits, an enum or union index outside
//! its list, a boolean byte other than 0 or 1) with a ValueError naming the problem, never the
//! bytes. There is no schema resolution: Puente decodes the current writer schema with it, and
//! for an older writer checks the body with that writer's codec before fastavro resolves it
//! (fastavro alone would take a negative index from the end of the list). Encoding takes only
//! the values it is sure of (exact types, every field present, an unambiguous union branch)
//! and answers None otherwise, so that fastavro writes, or explains, everything else. Schemas
//! it does not support (recursive types, other logical types) are refused at construction, and
//! Puente then uses fastavro alone. An array or map a record field holds may be given a bound:
//! once a block count takes it past the bound, the rest of its entries, and those already built,
//! are skipped (read and checked as a value is, so what is refused as corrupt is the same, but never
//! built), it decodes as empty, and decoding goes on; ``decode`` then names each such array (its
//! path, its entries, its bound and where its bytes lie), for Puente to refuse the record with the
//! rest of its value. A string a record field holds may be given a bound in characters too: it is
//! decoded whole, and ``decode`` names the first string past its bound and counts the characters of
//! the bounded strings, so that Puente holds an alert to its text bounds without walking it again;
//! it also says whether all text is printable ASCII, in which no character can hide. ``murmur2`` is
//! Kafka's key hash, which Puente checks each ingress record's partition by.

use std::collections::HashMap;
use std::sync::Arc;

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{
    PyBool, PyBytes, PyDate, PyDateAccess, PyDateTime, PyDelta, PyDeltaAccess, PyDict, PyFloat, PyInt, PyList,
    PyString, PyTimeAccess, PyTuple, PyTzInfo, PyTzInfoAccess,
};
use serde_json::Value;

enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    /// A string, and the most characters it may hold where a bound is given (``texts``): counted, never cut.
    Str(Option<usize>),
    TimestampMillis,
    TimestampMicros,
    Date,
    Record(Vec<(Py<PyString>, Arc<Node>)>),
    Enum(Vec<Py<PyString>>),
    Array(Arc<Node>, Option<usize>),
    Map(Arc<Node>, Option<usize>),
    Union(Vec<Arc<Node>>, Vec<String>),
    Fixed(usize),
}

struct Compiler<'py> {
    py: Python<'py>,
    named: HashMap<String, Arc<Node>>,
    open: Vec<String>,
    /// Most entries of an array or map, by the full name of the record and the field that hold it.
    bounds: HashMap<(String, String), usize>,
    /// Most characters of a string, by the full name of the record and the field that hold it (or hold an array of
    /// such strings).
    texts: HashMap<(String, String), usize>,
}

fn err<T>(msg: impl Into<String>) -> PyResult<T> {
    Err(PyValueError::new_err(msg.into()))
}

impl<'py> Compiler<'py> {
    fn full_name(schema: &serde_json::Map<String, Value>, namespace: &str) -> PyResult<(String, String)> {
        let name = schema.get("name").and_then(Value::as_str).ok_or_else(|| PyValueError::new_err("named type without a name"))?;
        let ns = schema.get("namespace").and_then(Value::as_str).unwrap_or(namespace);
        if name.contains('.') {
            let space = name.rsplit_once('.').map(|(a, _)| a).unwrap_or("");
            Ok((name.to_string(), space.to_string()))
        } else if ns.is_empty() {
            Ok((name.to_string(), String::new()))
        } else {
            Ok((format!("{ns}.{name}"), ns.to_string()))
        }
    }

    /// The name fastavro's tuple notation uses for a union branch: a named type's full name, else its type.
    fn branch_name(schema: &Value, namespace: &str) -> String {
        match schema {
            Value::String(name) => {
                let primitive = matches!(name.as_str(), "null" | "boolean" | "int" | "long" | "float" | "double" | "bytes" | "string");
                if primitive || name.contains('.') || namespace.is_empty() { name.clone() } else { format!("{namespace}.{name}") }
            }
            Value::Object(map) => match map.get("type").and_then(Value::as_str) {
                Some("record" | "error" | "enum" | "fixed") => Self::full_name(map, namespace).map(|(f, _)| f).unwrap_or_default(),
                Some(other) => other.to_string(),
                None => String::new(),
            },
            _ => String::new(),
        }
    }

    /// ``bound`` is a record field's: it holds the array or map the field is (or one of its union's) to it.
    /// ``text`` too: it holds the string the field is (or one of its union's, or its array's items) to it.
    fn compile(&mut self, schema: &Value, namespace: &str, bound: Option<usize>, text: Option<usize>) -> PyResult<Arc<Node>> {
        match schema {
            Value::String(name) => self.primitive_or_named(name, namespace, text),
            Value::Array(branches) => {
                let mut out = Vec::with_capacity(branches.len());
                let mut names = Vec::with_capacity(branches.len());
                for b in branches {
                    out.push(self.compile(b, namespace, bound, text)?);
                    names.push(Self::branch_name(b, namespace));
                }
                Ok(Arc::new(Node::Union(out, names)))
            }
            Value::Object(map) => {
                let kind = map.get("type").ok_or_else(|| PyValueError::new_err("schema object without a type"))?;
                if let Some(logical) = map.get("logicalType").and_then(Value::as_str) {
                    let base = kind.as_str().unwrap_or("");
                    return match (logical, base) {
                        ("timestamp-millis", "long") => Ok(Arc::new(Node::TimestampMillis)),
                        ("timestamp-micros", "long") => Ok(Arc::new(Node::TimestampMicros)),
                        ("date", "int") => Ok(Arc::new(Node::Date)),
                        _ => err(format!("logical type {logical} on {base} is not supported")),
                    };
                }
                match kind {
                    Value::String(k) => match k.as_str() {
                        "record" | "error" => self.record(map, namespace),
                        "enum" => {
                            let (full, _) = Self::full_name(map, namespace)?;
                            let symbols = map.get("symbols").and_then(Value::as_array).ok_or_else(|| PyValueError::new_err("enum without symbols"))?;
                            let syms = symbols
                                .iter()
                                .map(|s| s.as_str().map(|s| PyString::intern(self.py, s).unbind()).ok_or_else(|| PyValueError::new_err("enum symbol is not a string")))
                                .collect::<PyResult<Vec<_>>>()?;
                            let node = Arc::new(Node::Enum(syms));
                            self.named.insert(full, node.clone());
                            Ok(node)
                        }
                        "fixed" => {
                            let (full, _) = Self::full_name(map, namespace)?;
                            let size = map.get("size").and_then(Value::as_u64).ok_or_else(|| PyValueError::new_err("fixed without size"))?;
                            let node = Arc::new(Node::Fixed(size as usize));
                            self.named.insert(full, node.clone());
                            Ok(node)
                        }
                        "array" => {
                            let items = map.get("items").ok_or_else(|| PyValueError::new_err("array without items"))?;
                            Ok(Arc::new(Node::Array(self.compile(items, namespace, None, text)?, bound)))
                        }
                        "map" => {
                            let values = map.get("values").ok_or_else(|| PyValueError::new_err("map without values"))?;
                            Ok(Arc::new(Node::Map(self.compile(values, namespace, None, text)?, bound)))
                        }
                        other => self.primitive_or_named(other, namespace, text),
                    },
                    nested => self.compile(nested, namespace, bound, text),
                }
            }
            _ => err("schema is not a string, list or object"),
        }
    }

    fn record(&mut self, map: &serde_json::Map<String, Value>, namespace: &str) -> PyResult<Arc<Node>> {
        let (full, space) = Self::full_name(map, namespace)?;
        self.open.push(full.clone());
        let fields = map.get("fields").and_then(Value::as_array).ok_or_else(|| PyValueError::new_err("record without fields"))?;
        let mut out = Vec::with_capacity(fields.len());
        for f in fields {
            let name = f.get("name").and_then(Value::as_str).ok_or_else(|| PyValueError::new_err("field without a name"))?;
            let ty = f.get("type").ok_or_else(|| PyValueError::new_err("field without a type"))?;
            let key = (full.clone(), name.to_string());
            let (bound, text) = (self.bounds.get(&key).copied(), self.texts.get(&key).copied());
            out.push((PyString::intern(self.py, name).unbind(), self.compile(ty, &space, bound, text)?));
        }
        self.open.pop();
        let node = Arc::new(Node::Record(out));
        self.named.insert(full, node.clone());
        Ok(node)
    }

    fn primitive_or_named(&mut self, name: &str, namespace: &str, text: Option<usize>) -> PyResult<Arc<Node>> {
        let node = match name {
            "null" => Node::Null,
            "boolean" => Node::Boolean,
            "int" => Node::Int,
            "long" => Node::Long,
            "float" => Node::Float,
            "double" => Node::Double,
            "bytes" => Node::Bytes,
            "string" => Node::Str(text),
            _ => {
                let full = if name.contains('.') || namespace.is_empty() { name.to_string() } else { format!("{namespace}.{name}") };
                for candidate in [full.as_str(), name] {
                    if self.open.iter().any(|o| o == candidate) {
                        return err(format!("recursive type {candidate} is not supported"));
                    }
                    if let Some(found) = self.named.get(candidate) {
                        return Ok(found.clone());
                    }
                }
                return err(format!("unknown type {name}"));
            }
        };
        Ok(Arc::new(node))
    }
}

/// An array or map past its bound, decoded as empty: where it is (steps innermost first, added on the way out),
/// how many entries it has, its bound, and the offsets of its bytes.
struct Over {
    steps: Vec<String>,
    count: usize,
    bound: usize,
    start: usize,
    end: usize,
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    /// The arrays and maps past their bound so far, in the order their bytes come.
    over: Vec<Over>,
    /// The characters of the bounded strings read so far.
    chars: usize,
    /// The first string read past its bound (``count``: its characters; no offsets), if any: at most one.
    long: Vec<Over>,
    /// Whether every string and map key read so far is printable ASCII or a line feed, and no bytes were read.
    plain: bool,
}

impl<'a> Reader<'a> {
    #[inline]
    fn long(&mut self) -> PyResult<i64> {
        let mut value: u64 = 0;
        let mut shift = 0u32;
        loop {
            let Some(&b) = self.buf.get(self.pos) else { return err("truncated varint") };
            self.pos += 1;
            if shift >= 64 || (shift == 63 && b > 1) {
                return err("varint longer than 64 bits");
            }
            value |= ((b & 0x7f) as u64) << shift;
            if b & 0x80 == 0 {
                // One value, one form: a last byte of 0 after others only pads the value.
                if b == 0 && shift > 0 {
                    return err("varint not in its shortest form");
                }
                break;
            }
            shift += 7;
        }
        Ok(((value >> 1) as i64) ^ -((value & 1) as i64))
    }

    #[inline]
    fn take(&mut self, n: usize) -> PyResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|e| *e <= self.buf.len());
        match end {
            Some(end) => {
                let out = &self.buf[self.pos..end];
                self.pos = end;
                Ok(out)
            }
            None => err("truncated value"),
        }
    }

    /// An Avro `int`: a varint like a long, refused (as corrupt) outside 32 bits, where a strict
    /// reader (Java's readInt) would stop. Nothing out of range is decoded, so nothing out of range
    /// is ever written on to partners.
    #[inline]
    fn int(&mut self) -> PyResult<i32> {
        i32::try_from(self.long()?).or_else(|_| err("int outside 32 bits"))
    }

    /// A block's count (0: the end) and, for a negative count, its size in bytes, checked against what is left.
    fn block(&mut self, what: &str) -> PyResult<(usize, Option<i64>)> {
        let mut count = self.long()?;
        if count == 0 {
            return Ok((0, None));
        }
        let mut size = None;
        if count < 0 {
            count = count.checked_neg().ok_or_else(|| PyValueError::new_err("bad block count"))?;
            size = Some(self.long()?); // the block's size in bytes: it must be the items' own
        }
        if count as usize > self.buf.len() - self.pos.min(self.buf.len()) + 1 {
            return err(format!("{what} block longer than the record"));
        }
        Ok((count as usize, size))
    }

    /// A map key: a string that must be UTF-8.
    fn key(&mut self) -> PyResult<&'a str> {
        let n = self.length()?;
        std::str::from_utf8(self.take(n)?).map_err(|_| PyValueError::new_err("map key is not UTF-8"))
    }

    fn length(&mut self) -> PyResult<usize> {
        let n = self.long()?;
        if n < 0 {
            return err("negative length");
        }
        Ok(n as usize)
    }
}

fn civil(days: i64) -> (i64, u8, u8) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { yoe + era * 400 + 1 } else { yoe + era * 400 }, m as u8, d as u8)
}

fn year_ok(y: i64) -> PyResult<i32> {
    if (1..=9999).contains(&y) { Ok(y as i32) } else { err("date outside years 1-9999") }
}

/// A timestamp's date (its year within 1-9999), its second of the day and its microseconds.
fn moment(v: i64, per_sec: i64) -> PyResult<((i32, u8, u8), i64, i64)> {
    let secs = v.div_euclid(per_sec);
    let frac = v.rem_euclid(per_sec);
    let micros = if per_sec == 1_000 { frac * 1_000 } else { frac };
    let (y, m, d) = civil(secs.div_euclid(86_400));
    Ok(((year_ok(y)?, m, d), secs.rem_euclid(86_400), micros))
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Encoding stops (and Python falls back to fastavro) at the first value it is not sure about.
struct Unsure;

/// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z in microseconds since the Unix epoch: what a reader's
/// datetime holds.
const MIN_UTC_MICROS: i64 = -62_135_596_800_000_000;
const MAX_UTC_MICROS: i64 = 253_402_300_799_999_999;

fn put_long(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_long(out, s.len() as i64);
    out.extend_from_slice(s.as_bytes());
}

fn union_record_choice(branches: &[Arc<Node>], dict: &Bound<'_, PyDict>) -> Option<usize> {
    // The branch whose required fields the dict has and whose fields cover its keys (as Puente's tagger).
    for (i, b) in branches.iter().enumerate() {
        if let Node::Record(fields) = b.as_ref() {
            let py = dict.py();
            let all_present = fields.iter().all(|(name, _)| dict.contains(name.bind(py)).unwrap_or(false));
            if !all_present || dict.len() > fields.len() {
                continue;
            }
            return Some(i);
        }
    }
    None
}

fn write(out: &mut Vec<u8>, node: &Node, v: &Bound<'_, PyAny>) -> Result<(), Unsure> {
    match node {
        Node::Null => {
            if !v.is_none() {
                return Err(Unsure);
            }
        }
        Node::Boolean => {
            let b = v.downcast_exact::<PyBool>().map_err(|_| Unsure)?;
            out.push(if b.is_true() { 1 } else { 0 });
        }
        Node::Int | Node::Long => {
            let i = v.downcast_exact::<PyInt>().map_err(|_| Unsure)?;
            let n: i64 = i.extract().map_err(|_| Unsure)?;
            if matches!(node, Node::Int) && i32::try_from(n).is_err() {
                return Err(Unsure); // not written: Python's fallback refuses it with a RecordMismatchError
            }
            put_long(out, n);
        }
        Node::Float => {
            let f = v.downcast_exact::<PyFloat>().map_err(|_| Unsure)?;
            out.extend_from_slice(&(f.value() as f32).to_le_bytes());
        }
        Node::Double => {
            let f = v.downcast_exact::<PyFloat>().map_err(|_| Unsure)?;
            out.extend_from_slice(&f.value().to_le_bytes());
        }
        Node::Bytes => {
            let b = v.downcast_exact::<PyBytes>().map_err(|_| Unsure)?;
            put_long(out, b.as_bytes().len() as i64);
            out.extend_from_slice(b.as_bytes());
        }
        Node::Fixed(n) => {
            let b = v.downcast_exact::<PyBytes>().map_err(|_| Unsure)?;
            if b.as_bytes().len() != *n {
                return Err(Unsure);
            }
            out.extend_from_slice(b.as_bytes());
        }
        Node::Str(_) => {
            let s = v.downcast_exact::<PyString>().map_err(|_| Unsure)?;
            put_str(out, s.to_str().map_err(|_| Unsure)?);
        }
        Node::Enum(symbols) => {
            let s = v.downcast_exact::<PyString>().map_err(|_| Unsure)?;
            let text = s.to_str().map_err(|_| Unsure)?;
            let py = v.py();
            let i = symbols.iter().position(|sym| sym.bind(py).to_str().map(|t| t == text).unwrap_or(false)).ok_or(Unsure)?;
            put_long(out, i as i64);
        }
        Node::TimestampMillis | Node::TimestampMicros => {
            let dt = v.downcast_exact::<PyDateTime>().map_err(|_| Unsure)?;
            if dt.get_tzinfo().is_none() {
                return Err(Unsure); // fastavro reads a naive time as local time: leave that to it
            }
            let offset = dt.call_method0("utcoffset").map_err(|_| Unsure)?;
            let offset = offset.downcast::<PyDelta>().map_err(|_| Unsure)?;
            let offset_us = (offset.get_days() as i64 * 86_400 + offset.get_seconds() as i64) * 1_000_000
                + offset.get_microseconds() as i64;
            let days = days_from_civil(dt.get_year() as i64, dt.get_month() as i64, dt.get_day() as i64);
            let secs = days * 86_400 + dt.get_hour() as i64 * 3600 + dt.get_minute() as i64 * 60 + dt.get_second() as i64;
            let micros = secs * 1_000_000 + dt.get_microsecond() as i64 - offset_us;
            // Within years 1-9999 in UTC, as every reader decodes them: a local time near either end can fall
            // outside once its offset is taken off (9999-12-31T23:00-05:00 is year 10000 in UTC). The fallback
            // refuses it, with the field's name.
            if !(MIN_UTC_MICROS..=MAX_UTC_MICROS).contains(&micros) {
                return Err(Unsure);
            }
            put_long(out, if matches!(node, Node::TimestampMillis) { micros.div_euclid(1000) } else { micros });
        }
        Node::Date => {
            let d = v.downcast_exact::<PyDate>().map_err(|_| Unsure)?;
            put_long(out, days_from_civil(d.get_year() as i64, d.get_month() as i64, d.get_day() as i64));
        }
        Node::Record(fields) => {
            let dict = v.downcast_exact::<PyDict>().map_err(|_| Unsure)?;
            if dict.len() != fields.len() {
                return Err(Unsure); // a key the record type lacks (each field must be there): the fallback refuses it
            }
            let py = v.py();
            for (name, ty) in fields {
                let item = dict.get_item(name.bind(py)).map_err(|_| Unsure)?.ok_or(Unsure)?;
                write(out, ty, &item)?;
            }
        }
        Node::Array(items, _) => {
            let list = v.downcast_exact::<PyList>().map_err(|_| Unsure)?;
            if !list.is_empty() {
                put_long(out, list.len() as i64);
                for item in list.iter() {
                    write(out, items, &item)?;
                }
            }
            out.push(0);
        }
        Node::Map(values, _) => {
            let dict = v.downcast_exact::<PyDict>().map_err(|_| Unsure)?;
            if !dict.is_empty() {
                put_long(out, dict.len() as i64);
                for (k, item) in dict.iter() {
                    let key = k.downcast_exact::<PyString>().map_err(|_| Unsure)?;
                    put_str(out, key.to_str().map_err(|_| Unsure)?);
                    write(out, values, &item)?;
                }
            }
            out.push(0);
        }
        Node::Union(branches, names) => {
            if let Ok(pair) = v.downcast_exact::<PyTuple>() {
                // fastavro's tuple notation, (branch name, value): the branch is named, not guessed.
                if pair.len() != 2 {
                    return Err(Unsure);
                }
                let name = pair.get_item(0).map_err(|_| Unsure)?;
                let name = name.downcast_exact::<PyString>().map_err(|_| Unsure)?;
                let name = name.to_str().map_err(|_| Unsure)?;
                let i = names.iter().position(|n| n == name).ok_or(Unsure)?;
                put_long(out, i as i64);
                return write(out, &branches[i], &pair.get_item(1).map_err(|_| Unsure)?);
            }
            if v.is_none() {
                let i = branches.iter().position(|b| matches!(b.as_ref(), Node::Null)).ok_or(Unsure)?;
                put_long(out, i as i64);
                return Ok(());
            }
            let others: Vec<usize> = (0..branches.len()).filter(|i| !matches!(branches[*i].as_ref(), Node::Null)).collect();
            let chosen = if others.len() == 1 {
                others[0]
            } else if others.iter().all(|i| matches!(branches[*i].as_ref(), Node::Record(_))) {
                let dict = v.downcast_exact::<PyDict>().map_err(|_| Unsure)?;
                union_record_choice(branches, dict).ok_or(Unsure)?
            } else {
                return Err(Unsure);
            };
            put_long(out, chosen as i64);
            write(out, &branches[chosen], v)?;
        }
    }
    Ok(())
}

/// Immutable once built (``frozen``), its schema tree shared through ``Arc``: so any thread may use the one codec
/// a process builds (``schemas.alert_codec`` is process-wide). An ``unsendable`` class panicked when called from
/// another thread than its builder's, and PyO3's PanicException is a BaseException that no ``except`` of
/// Puente's catches.
#[pyclass(frozen)]
struct Codec {
    root: Arc<Node>,
    utc: Py<PyTzInfo>,
}

/// ``r.over`` from ``mark`` on and ``r.long`` from ``long`` on, each with ``step`` added to its path (on the way out
/// of a field or an entry).
fn within(r: &mut Reader<'_>, mark: usize, long: usize, step: &str) {
    for o in r.over[mark..].iter_mut().chain(r.long[long..].iter_mut()) {
        o.steps.push(step.to_string());
    }
}

/// Whether ``raw`` is printable ASCII (0x20 to 0x7E) and line feeds only: text in which no character can hide
/// another (what Python's ``broker.pipeline.hidden_char`` looks for is all outside it).
#[inline]
fn plain_ascii(raw: &[u8]) -> bool {
    raw.iter().all(|&b| (0x20..0x7f).contains(&b) || b == b'\n')
}

impl Codec {
    fn read<'py>(&self, py: Python<'py>, node: &Node, r: &mut Reader<'_>) -> PyResult<Bound<'py, PyAny>> {
        Ok(match node {
            Node::Null => py.None().into_bound(py),
            Node::Boolean => match r.take(1)?[0] {
                0 => false.into_pyobject(py)?.to_owned().into_any(),
                1 => true.into_pyobject(py)?.to_owned().into_any(),
                _ => return err("boolean byte is neither 0 nor 1"),
            },
            Node::Int => r.int()?.into_pyobject(py)?.into_any(),
            Node::Long => r.long()?.into_pyobject(py)?.into_any(),
            Node::Float => f32::from_le_bytes(r.take(4)?.try_into().unwrap()).into_pyobject(py)?.into_any(),
            Node::Double => f64::from_le_bytes(r.take(8)?.try_into().unwrap()).into_pyobject(py)?.into_any(),
            Node::Bytes => {
                let n = r.length()?;
                r.plain = false;
                PyBytes::new(py, r.take(n)?).into_any()
            }
            Node::Fixed(n) => {
                r.plain = false;
                PyBytes::new(py, r.take(*n)?).into_any()
            }
            Node::Str(text) => {
                let n = r.length()?;
                let raw = r.take(n)?;
                let s = std::str::from_utf8(raw).map_err(|_| PyValueError::new_err("string is not UTF-8"))?;
                let ascii = plain_ascii(raw);
                r.plain &= ascii;
                if let Some(most) = *text {
                    let chars = if ascii { raw.len() } else { s.chars().count() };
                    r.chars += chars;
                    if chars > most && r.long.is_empty() {
                        r.long.push(Over { steps: Vec::new(), count: chars, bound: most, start: 0, end: 0 });
                    }
                }
                PyString::new(py, s).into_any()
            }
            Node::TimestampMillis | Node::TimestampMicros => {
                let per_sec: i64 = if matches!(node, Node::TimestampMillis) { 1_000 } else { 1_000_000 };
                let ((y, m, d), sod, micros) = moment(r.long()?, per_sec)?;
                PyDateTime::new(py, y, m, d, (sod / 3600) as u8, ((sod % 3600) / 60) as u8, (sod % 60) as u8,
                                micros as u32, Some(self.utc.bind(py)))?.into_any()
            }
            Node::Date => {
                let (y, m, d) = civil(i64::from(r.int()?)); // 32-bit days: civil cannot overflow; year_ok bounds it
                PyDate::new(py, year_ok(y)?, m, d)?.into_any()
            }
            Node::Record(fields) => {
                let dict = PyDict::new(py);
                for (name, ty) in fields {
                    let (mark, long) = (r.over.len(), r.long.len());
                    let value = self.read(py, ty, r)?;
                    if r.over.len() > mark || r.long.len() > long {
                        within(r, mark, long, name.bind(py).to_str()?);
                    }
                    dict.set_item(name.bind(py), value)?;
                }
                dict.into_any()
            }
            Node::Enum(symbols) => {
                let i = r.long()?;
                match usize::try_from(i).ok().and_then(|i| symbols.get(i)) {
                    Some(s) => s.bind(py).clone().into_any(),
                    None => return err("enum index out of range"),
                }
            }
            Node::Union(branches, _) => {
                let i = r.long()?;
                match usize::try_from(i).ok().and_then(|i| branches.get(i)) {
                    Some(b) => self.read(py, b, r)?,
                    None => return err("union index out of range"),
                }
            }
            Node::Array(items, bound) => {
                let list = PyList::empty(py);
                let (start, mark, long) = (r.pos, r.over.len(), r.long.len());
                let mut seen: usize = 0;
                loop {
                    let (count, size) = r.block("array")?;
                    if count == 0 {
                        break;
                    }
                    seen += count; // at most the record's length: no overflow
                    if let Some(most) = bound.filter(|most| seen > *most) {
                        // Past its bound: no entry of it is kept, nor any array past a bound within them.
                        r.over.truncate(mark);
                        let block_start = r.pos;
                        for _ in 0..count {
                            self.skip(items, r)?;
                        }
                        if size.is_some_and(|n| n != (r.pos - block_start) as i64) {
                            return err("array block size is not its items' size");
                        }
                        let count = seen + self.skip_blocks(items, false, r, "array")?;
                        r.over.push(Over { steps: Vec::new(), count, bound: most, start, end: r.pos });
                        return Ok(PyList::empty(py).into_any());
                    }
                    let block_start = r.pos;
                    for _ in 0..count {
                        list.append(self.read(py, items, r)?)?;
                    }
                    if size.is_some_and(|n| n != (r.pos - block_start) as i64) {
                        return err("array block size is not its items' size");
                    }
                }
                if r.over.len() > mark || r.long.len() > long {
                    within(r, mark, long, "[]");
                }
                list.into_any()
            }
            Node::Map(values, bound) => {
                let dict = PyDict::new(py);
                let (start, mark, long) = (r.pos, r.over.len(), r.long.len());
                let mut seen: usize = 0;
                loop {
                    let (count, size) = r.block("map")?;
                    if count == 0 {
                        break;
                    }
                    seen += count;
                    if let Some(most) = bound.filter(|most| seen > *most) {
                        r.over.truncate(mark);
                        let block_start = r.pos;
                        for _ in 0..count {
                            r.key()?;
                            self.skip(values, r)?;
                        }
                        if size.is_some_and(|n| n != (r.pos - block_start) as i64) {
                            return err("map block size is not its items' size");
                        }
                        let count = seen + self.skip_blocks(values, true, r, "map")?;
                        r.over.push(Over { steps: Vec::new(), count, bound: most, start, end: r.pos });
                        return Ok(PyDict::new(py).into_any());
                    }
                    let block_start = r.pos;
                    for _ in 0..count {
                        let key = r.key()?;
                        r.plain &= plain_ascii(key.as_bytes());
                        let value = self.read(py, values, r)?;
                        dict.set_item(PyString::new(py, key), value)?;
                    }
                    if size.is_some_and(|n| n != (r.pos - block_start) as i64) {
                        return err("map block size is not its items' size");
                    }
                }
                if r.over.len() > mark || r.long.len() > long {
                    within(r, mark, long, "[]");
                }
                dict.into_any()
            }
        })
    }

    /// Read past one value of ``node`` without building it, refusing what ``read`` refuses, with its words.
    fn skip(&self, node: &Node, r: &mut Reader<'_>) -> PyResult<()> {
        match node {
            Node::Null => {}
            Node::Boolean => {
                if r.take(1)?[0] > 1 {
                    return err("boolean byte is neither 0 nor 1");
                }
            }
            Node::Int => {
                r.int()?;
            }
            Node::Long => {
                r.long()?;
            }
            Node::Float => {
                r.take(4)?;
            }
            Node::Double => {
                r.take(8)?;
            }
            Node::Bytes => {
                let n = r.length()?;
                r.take(n)?;
            }
            Node::Fixed(n) => {
                r.take(*n)?;
            }
            Node::Str(_) => {
                let n = r.length()?;
                if std::str::from_utf8(r.take(n)?).is_err() {
                    return err("string is not UTF-8");
                }
            }
            Node::TimestampMillis => {
                moment(r.long()?, 1_000)?;
            }
            Node::TimestampMicros => {
                moment(r.long()?, 1_000_000)?;
            }
            Node::Date => {
                year_ok(civil(i64::from(r.int()?)).0)?;
            }
            Node::Record(fields) => {
                for (_, ty) in fields {
                    self.skip(ty, r)?;
                }
            }
            Node::Enum(symbols) => {
                if usize::try_from(r.long()?).ok().and_then(|i| symbols.get(i)).is_none() {
                    return err("enum index out of range");
                }
            }
            Node::Union(branches, _) => match usize::try_from(r.long()?).ok().and_then(|i| branches.get(i)) {
                Some(b) => self.skip(b, r)?,
                None => return err("union index out of range"),
            },
            Node::Array(items, _) => {
                self.skip_blocks(items, false, r, "array")?;
            }
            Node::Map(values, _) => {
                self.skip_blocks(values, true, r, "map")?;
            }
        }
        Ok(())
    }

    /// Read past an array's (or, ``keyed``, a map's) blocks to its end without building them; how many entries.
    /// No bound holds within: nothing here is kept.
    fn skip_blocks(&self, item: &Node, keyed: bool, r: &mut Reader<'_>, what: &str) -> PyResult<usize> {
        let mut seen: usize = 0;
        loop {
            let (count, size) = r.block(what)?;
            if count == 0 {
                return Ok(seen);
            }
            seen += count;
            let block_start = r.pos;
            for _ in 0..count {
                if keyed {
                    r.key()?;
                }
                self.skip(item, r)?;
            }
            if size.is_some_and(|n| n != (r.pos - block_start) as i64) {
                return err(format!("{what} block size is not its items' size"));
            }
        }
    }
}

#[pymethods]
impl Codec {
    /// Compile ``schema_json`` (the writer schema, expanded). ValueError if it is not supported.
    /// ``bounds`` maps (record full name, field name) to the most entries of the array or map that
    /// field holds: one past it decodes as empty, and ``decode`` names it. ``texts`` maps them to the most
    /// characters of the string the field holds (or of each string of its array): a string past it is decoded
    /// whole, and ``decode`` names the first such.
    #[new]
    fn new(py: Python<'_>, schema_json: &str, utc: Bound<'_, PyTzInfo>, bounds: HashMap<(String, String), usize>,
           texts: HashMap<(String, String), usize>) -> PyResult<Self> {
        let schema: Value = serde_json::from_str(schema_json).map_err(|e| PyValueError::new_err(format!("schema is not JSON: {e}")))?;
        let mut compiler = Compiler { py, named: HashMap::new(), open: Vec::new(), bounds, texts };
        let root = compiler.compile(&schema, "", None, None)?;
        Ok(Codec { root, utc: utc.unbind() })
    }

    /// ``header`` followed by the Avro body of ``value``; None where fastavro should decide (a value
    /// of another type than the schema's, a missing field that has a default, a naive datetime...).
    fn encode<'py>(&self, py: Python<'py>, value: &Bound<'py, PyAny>, header: &[u8]) -> Option<Bound<'py, PyBytes>> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(header);
        match write(&mut out, &self.root, value) {
            Ok(()) => Some(PyBytes::new(py, &out)),
            Err(Unsure) => None,
        }
    }

    /// Decode one value from ``data`` starting at ``offset``; return it, the offset after it, None or, when
    /// arrays or maps were past their bound (decoded as empty), a list of ``(path, entries, bound, start, end)``
    /// for each, in the order of their bytes (``payload.detainees[].documents``; ``start``, ``end``: offsets in
    /// ``data``; none of them lies within another), and what its text holds: ``(characters, plain, long)``, the
    /// characters of its bounded strings (``texts``) in all, whether every string and map key is printable ASCII
    /// or line feeds (and no bytes value was read), and None or ``(path, characters, bound)`` for the first
    /// string past its bound. For a record with an array past its bound, which Puente refuses for that, the text
    /// measure is of no use: strings of the array's blocks before the one that took it past are counted, after not.
    #[allow(clippy::type_complexity)]
    fn decode<'py>(&self, py: Python<'py>, data: &[u8], offset: usize)
                   -> PyResult<(Bound<'py, PyAny>, usize, Option<Vec<(String, usize, usize, usize, usize)>>,
                                (usize, bool, Option<(String, usize, usize)>))> {
        if offset > data.len() {
            return err("offset beyond the data");
        }
        let mut r = Reader { buf: data, pos: offset, over: Vec::new(), chars: 0, long: Vec::new(), plain: true };
        let value = self.read(py, &self.root, &mut r)?;
        let over = if r.over.is_empty() {
            None
        } else {
            Some(r.over.into_iter().map(|o| (path(&o.steps), o.count, o.bound, o.start, o.end)).collect())
        };
        let long = r.long.into_iter().next().map(|o| (path(&o.steps), o.count, o.bound));
        Ok((value, r.pos, over, (r.chars, r.plain, long)))
    }

}

/// Kafka's murmur2 hash of ``data`` (``org.apache.kafka.common.utils.Utils.murmur2``), as an unsigned 32-bit
/// value: what Kafka's default partitioner places a record key by.
#[pyfunction]
fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    let mut h: u32 = 0x9747_b28c ^ (data.len() as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let mut k = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> 24;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let rest = words.remainder();
    if rest.len() == 3 {
        h ^= u32::from(rest[2]) << 16;
    }
    if rest.len() >= 2 {
        h ^= u32::from(rest[1]) << 8;
    }
    if !rest.is_empty() {
        h ^= u32::from(rest[0]);
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^ (h >> 15)
}

/// ``payload.detainees[].documents`` from its steps, innermost first.
fn path(steps: &[String]) -> String {
    let mut out = String::new();
    for s in steps.iter().rev() {
        if !s.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(s);
    }
    if out.is_empty() { "the record".to_string() } else { out }
}

#[pymodule]
fn puente_avro(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<Codec>()?;
    m.add_function(wrap_pyfunction!(murmur2, m)?)?;
    // What Python checks before it uses this build (schemas._codec): 4 since ``decode`` says what the text holds
    // and strings have bounds (``texts``; ``murmur2`` came later in 4, and Python falls back where a build lacks
    // it); 3 since an array or map past its bound decodes as
    // empty and ``decode`` names it (2, never released, raised at its count).
    m.add("INTERFACE", 4)?;
    Ok(())
}
