// What the pages build on: elements whose text goes in as textContent, so that what a message or
// a ticker holds never becomes markup, and the service's JSON, whose errors carry a message.
export function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

export async function fetchJSON(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok) throw new Error(body.message || response.statusText);
  return body;
}
