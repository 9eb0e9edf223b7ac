//! Relations in a scenario's `[expect]`: `"<field> <op> <term>"`, a
//! result-line counter compared with a number, another counter, or the
//! count of applied faults of one kind (`faults.<kind>`). Parsed when the
//! scenario is loaded, so a typo is a load error naming the field, not a
//! failed scenario.

use std::fmt;

use device_model::fault::FaultEffect;

/// A comparison in a relation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Le,
    Ge,
    Lt,
    Gt,
}

impl Op {
    fn parse(text: &str) -> Option<Op> {
        Some(match text {
            "==" => Op::Eq,
            "!=" => Op::Ne,
            "<=" => Op::Le,
            ">=" => Op::Ge,
            "<" => Op::Lt,
            ">" => Op::Gt,
            _ => return None,
        })
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Eq => left == right,
            Op::Ne => left != right,
            Op::Le => left <= right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Gt => left > right,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            Op::Eq => "==",
            Op::Ne => "!=",
            Op::Le => "<=",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Gt => ">",
        }
    }
}

/// The right-hand side of a relation.
#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Number(f64),
    /// A numeric field of the result line.
    Field(String),
    /// How many faults of this kind the host's fault log holds.
    Faults(String),
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Number(n) => write!(f, "{n}"),
            Term::Field(name) => f.write_str(name),
            Term::Faults(kind) => write!(f, "faults.{kind}"),
        }
    }
}

/// `<field> <op> <term>`: a result-line counter against a number, another
/// counter, or a count of applied faults.
#[derive(Debug, Clone, PartialEq)]
pub struct Relation {
    pub field: String,
    pub op: Op,
    pub term: Term,
}

impl fmt::Display for Relation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.field, self.op.symbol(), self.term)
    }
}

impl Relation {
    /// Parses `"watchdog_recoveries == faults.drop-interrupt"`.
    pub fn parse(text: &str) -> Result<Relation, String> {
        Relation::parse_for(text, check_field)
    }

    /// Parses a relation whose field names `check_field` accepts (the
    /// Linux harness's result line has other fields than the dmalab
    /// guest's).
    pub fn parse_for(
        text: &str,
        check_field: fn(&str) -> Result<(), String>,
    ) -> Result<Relation, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        let [field, op, term] = words[..] else {
            return Err(format!(
                "{text:?} is not \"<field> <op> <term>\" (three words, e.g. \
                 \"retries == faults.dma-error\")"
            ));
        };
        check_field(field)?;
        let op = Op::parse(op).ok_or_else(|| format!("{op:?} is not one of == != <= >= < >"))?;
        let term = if let Some(kind) = term.strip_prefix("faults.") {
            check_kind(kind)?;
            Term::Faults(kind.to_string())
        } else if let Ok(n) = term.parse::<f64>() {
            Term::Number(n)
        } else if check_field(term).is_ok() {
            Term::Field(term.to_string())
        } else {
            return Err(format!(
                "{term:?} is not a number, a field or faults.<kind>"
            ));
        };
        Ok(Relation {
            field: field.to_string(),
            op,
            term,
        })
    }
}

/// A field of the Linux harness's result line: a name or a dotted path
/// into its objects (`dmatest.failures`), as `dmalab_protocol::linux`
/// lists them (checked against the harness's C source), so a misspelt
/// or renamed field is a bad scenario file, not a failure at run time.
pub fn check_linux_field(name: &str) -> Result<(), String> {
    if dmalab_protocol::linux::is_field(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a field of the Linux harness's result line \
             (vmm/protocol/src/linux.rs lists them)"
        ))
    }
}

/// A field of the DMA driver's result line (`dmalab_protocol::result`,
/// checked against the guest's C source), so a misspelt or renamed field
/// is a bad scenario file, not a failure at run time.
pub fn check_field(name: &str) -> Result<(), String> {
    if dmalab_protocol::result::is_driver_field(name) {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a field of the DMA driver's result line \
             (vmm/protocol/src/result.rs lists them)"
        ))
    }
}

/// A fault kind name of `FaultEffect::KIND_NAMES`.
pub fn check_kind(kind: &str) -> Result<(), String> {
    if FaultEffect::KIND_NAMES.contains(&kind) {
        Ok(())
    } else {
        Err(format!(
            "unknown fault kind {kind:?} (one of {})",
            FaultEffect::KIND_NAMES.join(", ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relations_parse_every_term() {
        let r = Relation::parse("retries <= 3").unwrap();
        assert_eq!((r.op, r.term), (Op::Le, Term::Number(3.0)));
        let r = Relation::parse("transfers == drv_irps").unwrap();
        assert_eq!(r.term, Term::Field("drv_irps".into()));
        let r = Relation::parse("short_transfers >= faults.short-transfer").unwrap();
        assert_eq!(r.term, Term::Faults("short-transfer".into()));
        assert!(Relation::parse("a == faults.nope").is_err());
        assert!(Relation::parse("a == b c").is_err());
        assert!(Relation::parse("a-b == 1").is_err());
        assert!(Op::Lt.holds(1.0, 2.0) && !Op::Gt.holds(1.0, 2.0) && Op::Ne.holds(1.0, 2.0));
    }
}
