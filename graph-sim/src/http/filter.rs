//! A small OData `$filter` parser and evaluator covering what the agent sends: `eq`, `ne`,
//! `gt`/`ge`/`lt`/`le`, `and`, `or`, `not`, parentheses, `in (...)`, `startswith`,
//! `endswith`, and lambdas such as `methodsRegistered/any(m:m eq 'fido2')`.
//!
//! String comparisons are case-insensitive like the directory's. `ne`, `not` and `endswith`
//! are advanced queries, which Graph accepts on directory objects only with
//! `ConsistencyLevel: eventual` and `$count=true`.

use serde_json::Value;

/// A parsed filter expression.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Or(Box<Expr>, Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Compare(Vec<String>, Op, Literal),
    StartsWith(Vec<String>, String),
    EndsWith(Vec<String>, String),
    In(Vec<String>, Vec<Literal>),
    Any(Vec<String>, String, Box<Expr>),
}

/// Comparison operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

/// Literal values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Literal {
    Str(String),
    Number(f64),
    Bool(bool),
    Null,
    /// Unquoted words such as dates and GUIDs.
    Bare(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
    Slash,
}

/// Parses a `$filter` value; the error is a message for a 400 answer.
pub(crate) fn parse(text: &str) -> Result<Expr, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        position: 0,
    };
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(format!("Syntax error at token {token:?} in '{text}'.")),
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = text.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        i += 1;
        match c {
            ' ' | '\t' => {}
            '(' => tokens.push(Token::Open),
            ')' => tokens.push(Token::Close),
            ',' => tokens.push(Token::Comma),
            '/' => tokens.push(Token::Slash),
            ':' => tokens.push(Token::Colon),
            '\'' => {
                let mut value = String::new();
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some('\''), Some('\'')) => {
                            value.push('\'');
                            i += 2;
                        }
                        (Some('\''), _) => {
                            i += 1;
                            break;
                        }
                        (Some(&ch), _) => {
                            value.push(ch);
                            i += 1;
                        }
                        (None, _) => return Err("Unterminated string literal.".into()),
                    }
                }
                tokens.push(Token::Str(value));
            }
            _ => {
                let numeric = c.is_ascii_digit() || c == '-';
                let mut word = c.to_string();
                while let Some(&ch) = chars.get(i) {
                    let ok = ch.is_ascii_alphanumeric()
                        || matches!(ch, '_' | '.' | '@' | '-' | '$')
                        || (numeric && matches!(ch, ':' | '+'));
                    if !ok {
                        break;
                    }
                    word.push(ch);
                    i += 1;
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position)
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.position).cloned();
        self.position += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        if matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)) {
            self.position += 1;
            return true;
        }
        false
    }

    fn expect(&mut self, token: Token) -> Result<(), String> {
        match self.next() {
            Some(t) if t == token => Ok(()),
            other => Err(format!("Expected {token:?}, found {other:?}.")),
        }
    }

    fn or(&mut self) -> Result<Expr, String> {
        let mut left = self.and()?;
        while self.keyword("or") {
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, String> {
        let mut left = self.unary()?;
        while self.keyword("and") {
            left = Expr::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Expr, String> {
        if self.keyword("not") {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek() == Some(&Token::Open) {
            self.position += 1;
            let inner = self.or()?;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Expr, String> {
        let word = match self.next() {
            Some(Token::Word(w)) => w,
            other => return Err(format!("Expected a property, found {other:?}.")),
        };
        let lower = word.to_ascii_lowercase();
        if (lower == "startswith" || lower == "endswith") && self.peek() == Some(&Token::Open) {
            self.position += 1;
            let path = self.path_from(None)?;
            self.expect(Token::Comma)?;
            let value = match self.next() {
                Some(Token::Str(s)) => s,
                other => return Err(format!("Expected a string, found {other:?}.")),
            };
            self.expect(Token::Close)?;
            return Ok(if lower == "startswith" {
                Expr::StartsWith(path, value)
            } else {
                Expr::EndsWith(path, value)
            });
        }
        let mut path = self.path_from(Some(word))?;
        if let Some(last) = path.last() {
            let lambda = last.eq_ignore_ascii_case("any") || last.eq_ignore_ascii_case("all");
            if lambda && self.peek() == Some(&Token::Open) {
                path.pop();
                return self.lambda(path);
            }
        }
        if self.keyword("in") {
            return self.in_list(path);
        }
        let op = self.operator()?;
        let literal = self.literal()?;
        Ok(Expr::Compare(path, op, literal))
    }

    fn path_from(&mut self, first: Option<String>) -> Result<Vec<String>, String> {
        let mut path = Vec::new();
        match first {
            Some(w) => path.push(w),
            None => match self.next() {
                Some(Token::Word(w)) => path.push(w),
                other => return Err(format!("Expected a property, found {other:?}.")),
            },
        }
        while self.peek() == Some(&Token::Slash) {
            self.position += 1;
            match self.next() {
                Some(Token::Word(w)) => path.push(w),
                other => return Err(format!("Expected a property, found {other:?}.")),
            }
        }
        Ok(path)
    }

    fn lambda(&mut self, path: Vec<String>) -> Result<Expr, String> {
        self.expect(Token::Open)?;
        let variable = match self.next() {
            Some(Token::Word(w)) => w,
            other => return Err(format!("Expected a lambda variable, found {other:?}.")),
        };
        self.expect(Token::Colon)?;
        let body = self.or()?;
        self.expect(Token::Close)?;
        Ok(Expr::Any(path, variable, Box::new(body)))
    }

    fn in_list(&mut self, path: Vec<String>) -> Result<Expr, String> {
        self.expect(Token::Open)?;
        let mut values = vec![self.literal()?];
        while self.peek() == Some(&Token::Comma) {
            self.position += 1;
            values.push(self.literal()?);
        }
        self.expect(Token::Close)?;
        Ok(Expr::In(path, values))
    }

    fn operator(&mut self) -> Result<Op, String> {
        let word = match self.next() {
            Some(Token::Word(w)) => w.to_ascii_lowercase(),
            other => return Err(format!("Expected an operator, found {other:?}.")),
        };
        Ok(match word.as_str() {
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            _ => return Err(format!("Unsupported operator '{word}'.")),
        })
    }

    fn literal(&mut self) -> Result<Literal, String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(Literal::Str(s)),
            Some(Token::Word(w)) => Ok(match w.to_ascii_lowercase().as_str() {
                "true" => Literal::Bool(true),
                "false" => Literal::Bool(false),
                "null" => Literal::Null,
                _ => match w.parse::<f64>() {
                    Ok(n) => Literal::Number(n),
                    Err(_) => Literal::Bare(w),
                },
            }),
            other => Err(format!("Expected a literal, found {other:?}.")),
        }
    }
}

impl Expr {
    /// True for operators Graph treats as advanced queries.
    pub fn is_advanced(&self) -> bool {
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => a.is_advanced() || b.is_advanced(),
            Expr::Not(_) | Expr::EndsWith(..) => true,
            Expr::Compare(_, op, _) => *op == Op::Ne,
            Expr::Any(_, _, body) => body.is_advanced(),
            Expr::StartsWith(..) | Expr::In(..) => false,
        }
    }

    /// The first top-level property the expression names that `known` does not contain.
    pub fn unknown_property(&self, known: &[&str]) -> Option<String> {
        let check = |path: &Vec<String>| {
            path.first()
                .filter(|p| !known.iter().any(|k| k.eq_ignore_ascii_case(p)))
                .cloned()
        };
        match self {
            Expr::Or(a, b) | Expr::And(a, b) => a
                .unknown_property(known)
                .or_else(|| b.unknown_property(known)),
            Expr::Not(a) => a.unknown_property(known),
            Expr::Compare(p, ..)
            | Expr::StartsWith(p, _)
            | Expr::EndsWith(p, _)
            | Expr::In(p, _) => check(p),
            Expr::Any(p, ..) => check(p),
        }
    }

    /// Evaluates against one object.
    pub fn matches(&self, object: &Value) -> bool {
        self.eval(object, None)
    }

    fn eval(&self, object: &Value, bound: Option<(&str, &Value)>) -> bool {
        match self {
            Expr::Or(a, b) => a.eval(object, bound) || b.eval(object, bound),
            Expr::And(a, b) => a.eval(object, bound) && b.eval(object, bound),
            Expr::Not(a) => !a.eval(object, bound),
            Expr::Compare(path, op, literal) => compare(resolve(object, path, bound), *op, literal),
            Expr::StartsWith(path, prefix) => text(resolve(object, path, bound))
                .is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase())),
            Expr::EndsWith(path, suffix) => text(resolve(object, path, bound))
                .is_some_and(|s| s.to_lowercase().ends_with(&suffix.to_lowercase())),
            Expr::In(path, values) => {
                let value = resolve(object, path, bound);
                values.iter().any(|l| compare(value, Op::Eq, l))
            }
            Expr::Any(path, variable, body) => match resolve(object, path, bound) {
                Some(Value::Array(items)) => items
                    .iter()
                    .any(|item| body.eval(object, Some((variable.as_str(), item)))),
                _ => false,
            },
        }
    }
}

fn resolve<'a>(
    object: &'a Value,
    path: &[String],
    bound: Option<(&str, &'a Value)>,
) -> Option<&'a Value> {
    let (start, rest) = match (bound, path.split_first()) {
        (Some((name, value)), Some((first, rest))) if first == name => (value, rest),
        _ => (object, path),
    };
    rest.iter().try_fold(start, |current, segment| {
        let map = current.as_object()?;
        map.get(segment.as_str()).or_else(|| {
            map.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(segment))
                .map(|(_, v)| v)
        })
    })
}

fn text(value: Option<&Value>) -> Option<&str> {
    value.and_then(Value::as_str)
}

fn compare(value: Option<&Value>, op: Op, literal: &Literal) -> bool {
    use std::cmp::Ordering;
    let value = value.unwrap_or(&Value::Null);
    let ordering: Option<Ordering> = match (value, literal) {
        (Value::Null, Literal::Null) => Some(Ordering::Equal),
        (Value::Null, _) | (_, Literal::Null) => None,
        (Value::Bool(b), Literal::Bool(l)) => Some(b.cmp(l)),
        (Value::Number(n), Literal::Number(l)) => n.as_f64().and_then(|n| n.partial_cmp(l)),
        (Value::String(s), Literal::Str(l) | Literal::Bare(l)) => Some(compare_text(s, l)),
        _ => None,
    };
    match op {
        Op::Eq => ordering == Some(Ordering::Equal),
        Op::Ne => ordering != Some(Ordering::Equal),
        Op::Gt => ordering == Some(Ordering::Greater),
        Op::Ge => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        Op::Lt => ordering == Some(Ordering::Less),
        Op::Le => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
    }
}

fn compare_text(value: &str, literal: &str) -> std::cmp::Ordering {
    use chrono::DateTime;
    match (
        DateTime::parse_from_rfc3339(value),
        DateTime::parse_from_rfc3339(literal),
    ) {
        (Ok(a), Ok(b)) => a.cmp(&b),
        _ => value.to_lowercase().cmp(&literal.to_lowercase()),
    }
}

#[cfg(test)]
#[path = "filter_tests.rs"]
mod tests;
