// How corpus documents are turned into JSON text, shared by the generator and by the
// script that checks C++-saved documents in npm. The C++ Document::to_json() is
// compared against this form:
//   Uint8Array      -> base64 string
//   Date            -> ISO-8601 string (as JSON.stringify does)
//   Counter         -> its number
//   ImmutableString / RawString -> its string
//   BigInt (3.x returns ints beyond 2^31 and uints as BigInt) -> number
//   text            -> string (A.toJS already gives a string)

export const hex = (u8) => Buffer.from(u8).toString("hex");

function replacer(key, value) {
  // `this[key]` is the value before any toJSON() ran.
  const raw = this[key];
  if (raw instanceof Uint8Array) return Buffer.from(raw).toString("base64");
  if (raw instanceof Date) return Number.isNaN(raw.getTime()) ? null : raw.toISOString();
  if (typeof raw === "bigint") return Number(raw);
  if (raw !== null && typeof raw === "object" && !Array.isArray(raw)) {
    const name = raw.constructor && raw.constructor.name;
    if (name === "Counter") return raw.value;
    if (name === "ImmutableString" || name === "RawString") return raw.val;
  }
  return value;
}

export function docToJson(A, doc) {
  return JSON.stringify(A.toJS(doc), replacer);
}
