//! A small JSON Schema (2020-12) validator for the keywords `docs/report.schema.json`
//! uses: no crate already in the dependency tree validates JSON Schema, and the ones that
//! do are heavy. Any other keyword panics, so the schema cannot gain a rule that this
//! check would silently skip.

use std::path::Path;

use serde_json::Value;

pub struct Schema {
    root: Value,
}

impl Schema {
    pub fn load(path: &Path) -> Schema {
        let text = std::fs::read_to_string(path).expect("read the schema");
        Schema {
            root: serde_json::from_str(&text).expect("the schema is JSON"),
        }
    }

    /// The published schema of the JSON report.
    pub fn report() -> Schema {
        Schema::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/report.schema.json"))
    }

    pub fn root(&self) -> &Value {
        &self.root
    }

    /// Every place where `instance` breaks the schema, as `path: what`.
    pub fn errors(&self, instance: &Value) -> Vec<String> {
        let mut errors = Vec::new();
        self.check(&self.root, instance, "$", &mut errors);
        errors
    }

    fn check(&self, schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
        let rules = schema.as_object().expect("a schema is an object");
        for (keyword, rule) in rules {
            match keyword.as_str() {
                "$schema" | "$id" | "title" | "description" | "$defs" => {}
                "$ref" => self.check(self.resolve(rule), value, path, errors),
                "type" => {
                    let allowed: Vec<&str> = match rule {
                        Value::String(one) => vec![one],
                        Value::Array(many) => many.iter().filter_map(Value::as_str).collect(),
                        _ => panic!("bad type rule {rule}"),
                    };
                    if !allowed.iter().any(|name| is_type(value, name)) {
                        errors.push(format!("{path}: {value} is not of type {rule}"));
                    }
                }
                "const" if value != rule => {
                    errors.push(format!("{path}: {value} is not {rule}"));
                }
                "const" => {}
                "enum" => {
                    let options = rule.as_array().expect("enum is an array");
                    if !options.contains(value) {
                        errors.push(format!("{path}: {value} is not one of {rule}"));
                    }
                }
                "minimum" => {
                    let minimum = rule.as_f64().expect("minimum is a number");
                    if value.as_f64().is_some_and(|number| number < minimum) {
                        errors.push(format!("{path}: {value} is below {minimum}"));
                    }
                }
                "required" => {
                    if let Some(object) = value.as_object() {
                        for name in rule.as_array().expect("required is an array") {
                            let name = name.as_str().expect("required names are strings");
                            if !object.contains_key(name) {
                                errors.push(format!("{path}: {name:?} is missing"));
                            }
                        }
                    }
                }
                "properties" => {
                    if let Some(object) = value.as_object() {
                        let properties = rule.as_object().expect("properties is an object");
                        for (name, property) in properties {
                            if let Some(field) = object.get(name) {
                                self.check(property, field, &format!("{path}.{name}"), errors);
                            }
                        }
                    }
                }
                "additionalProperties" => {
                    let Some(object) = value.as_object() else {
                        continue;
                    };
                    let declared = rules.get("properties").and_then(Value::as_object);
                    for (name, field) in object {
                        if declared.is_some_and(|declared| declared.contains_key(name)) {
                            continue;
                        }
                        match rule {
                            Value::Bool(false) => {
                                errors.push(format!("{path}: {name:?} is not in the schema"))
                            }
                            Value::Bool(true) => {}
                            schema => self.check(schema, field, &format!("{path}.{name}"), errors),
                        }
                    }
                }
                "items" => {
                    if let Some(items) = value.as_array() {
                        for (index, item) in items.iter().enumerate() {
                            self.check(rule, item, &format!("{path}[{index}]"), errors);
                        }
                    }
                }
                other => panic!("the test's validator does not know the keyword {other:?}"),
            }
        }
    }

    fn resolve(&self, reference: &Value) -> &Value {
        let reference = reference.as_str().expect("$ref is a string");
        let pointer = reference
            .strip_prefix('#')
            .unwrap_or_else(|| panic!("only local references: {reference}"));
        self.root
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{reference} is not in the schema"))
    }
}

fn is_type(value: &Value, name: &str) -> bool {
    match name {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("unknown type {other:?}"),
    }
}
