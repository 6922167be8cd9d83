// docs.js: renders /api/v1/openapi.json for people — operations grouped by tag, their
// parameters, bodies, answers and tokens, then every schema. Text from the document is
// set with textContent only; `code` spans in descriptions become <code> elements.

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];

/** Makes an element with a class and children (strings become text nodes). */
function el(tag, className, ...children) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === 'string' ? document.createTextNode(child) : child);
  }
  return node;
}

/** A description with its `code` spans and paragraphs, as nodes. */
function prose(text, className = 'docs__text') {
  const block = el('div', className);
  for (const paragraph of String(text || '').split(/\n\s*\n/)) {
    const p = el('p');
    String(paragraph).replace(/\n/g, ' ').split('`').forEach((part, i) => {
      p.append(i % 2 ? el('code', null, part) : document.createTextNode(part));
    });
    block.append(p);
  }
  return block;
}

function refName(ref) {
  return ref.split('/').pop();
}

function resolve(doc, item) {
  if (item && item.$ref) {
    const [, , kind, name] = item.$ref.split('/');
    return (doc.components[kind] || {})[name] || {};
  }
  return item || {};
}

function anchor(kind, name) {
  return `${kind}-${name.replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

/** A short type label for a schema, with links to named schemas. */
function typeOf(schema) {
  const out = el('span', 'docs__type');
  if (!schema) return out;
  if (schema.$ref) {
    const name = refName(schema.$ref);
    const link = el('a', null, name);
    link.href = `#${anchor('schema', name)}`;
    out.append(link);
    return out;
  }
  const alternatives = schema.oneOf || schema.anyOf;
  if (alternatives) {
    alternatives.forEach((alt, i) => {
      if (i) out.append(' | ');
      out.append(typeOf(alt));
    });
    return out;
  }
  const types = Array.isArray(schema.type) ? schema.type : [schema.type || 'any'];
  types.forEach((type, i) => {
    if (i) out.append(' | ');
    if (type === 'array') {
      out.append(typeOf(schema.items), '[]');
    } else {
      out.append(type);
    }
  });
  const facts = [];
  if (schema.format) facts.push(schema.format);
  if (schema.enum) facts.push(`one of ${schema.enum.map((v) => JSON.stringify(v)).join(', ')}`);
  if (schema.minimum !== undefined) facts.push(`≥ ${schema.minimum}`);
  if (schema.maximum !== undefined) facts.push(`≤ ${schema.maximum}`);
  if (schema.minLength !== undefined) facts.push(`length ≥ ${schema.minLength}`);
  if (schema.maxLength !== undefined) facts.push(`length ≤ ${schema.maxLength}`);
  if (schema.default !== undefined) facts.push(`default ${JSON.stringify(schema.default)}`);
  if (facts.length) out.append(el('span', 'docs__facts', ` (${facts.join('; ')})`));
  return out;
}

/** The fields of an object schema as a table, or its type when it is not one. */
function schemaBody(doc, schema) {
  const target = schema && schema.$ref ? resolve(doc, schema) : schema;
  if (!target || !target.properties) {
    return el('p', 'docs__schema', typeOf(schema));
  }
  const wrap = el('div');
  if (schema.$ref) wrap.append(el('p', 'docs__schema', typeOf(schema)));
  const required = new Set(target.required || []);
  const table = el('table', 'docs__table');
  table.append(el('thead', null, el('tr', null, el('th', null, 'field'), el('th', null, 'type'), el('th', null, ''))));
  const body = el('tbody');
  for (const [name, prop] of Object.entries(target.properties)) {
    const description = prop.description
      || (prop.oneOf || []).map((alt) => alt.description).find(Boolean);
    body.append(el('tr', null,
      el('td', null, el('code', null, name), required.has(name) ? null : el('span', 'docs__muted', ' optional')),
      el('td', null, typeOf(prop)),
      el('td', null, description ? prose(description, 'docs__cell') : null)));
  }
  table.append(body);
  wrap.append(table);
  return wrap;
}

function contentBlock(doc, content) {
  const wrap = el('div');
  for (const [type, media] of Object.entries(content || {})) {
    wrap.append(el('p', 'docs__muted', el('code', null, type)));
    if (media.schema) wrap.append(schemaBody(doc, media.schema));
  }
  return wrap;
}

function parametersBlock(parameters) {
  const table = el('table', 'docs__table');
  table.append(el('thead', null, el('tr', null,
    el('th', null, 'parameter'), el('th', null, 'in'), el('th', null, 'type'), el('th', null, ''))));
  const body = el('tbody');
  for (const p of parameters) {
    const description = p.description || (p.schema && p.schema.description);
    body.append(el('tr', null,
      el('td', null, el('code', null, p.name), p.required ? null : el('span', 'docs__muted', ' optional')),
      el('td', null, p.in),
      el('td', null, typeOf(p.schema)),
      el('td', null, description ? prose(description, 'docs__cell') : null)));
  }
  table.append(body);
  return table;
}

function responsesBlock(doc, responses) {
  const list = el('div', 'docs__responses');
  for (const [status, raw] of Object.entries(responses)) {
    const response = resolve(doc, raw);
    const kind = status.startsWith('2') ? 'ok' : 'error';
    const item = el('details', `docs__response docs__response--${kind}`);
    item.append(el('summary', null, el('span', 'docs__status', status), ' ', prose(response.description, 'docs__inline')));
    const headers = Object.entries(response.headers || {});
    if (headers.length) {
      item.append(el('p', 'docs__muted', 'Headers: ', ...headers.flatMap(([name, header], i) => [
        i ? ', ' : '', el('code', null, name), header.description ? ` — ${header.description}` : '',
      ])));
    }
    item.append(contentBlock(doc, response.content));
    list.append(item);
  }
  return list;
}

function operationBlock(doc, path, method, op) {
  const id = anchor('op', op.operationId || `${method}-${path}`);
  const section = el('article', 'docs__op');
  section.id = id;
  section.append(el('h3', 'docs__op-title',
    el('span', `docs__method docs__method--${method}`, method.toUpperCase()), ' ',
    el('code', 'docs__path', path)));
  if (op.summary) section.append(prose(op.summary, 'docs__summary'));
  if (op.description) section.append(prose(op.description));
  const security = op.security || doc.security || [];
  const schemes = security.flatMap((requirement) => Object.keys(requirement));
  section.append(el('p', 'docs__muted', schemes.length
    ? `Token: ${schemes.join(' or ')}`
    : 'No token needed.'));
  if (op.parameters && op.parameters.length) {
    section.append(el('h4', null, 'Parameters'), parametersBlock(op.parameters));
  }
  if (op.requestBody) {
    const body = op.requestBody;
    section.append(el('h4', null, body.required ? 'Request body' : 'Request body (optional)'));
    if (body.description) section.append(prose(body.description));
    section.append(contentBlock(doc, body.content));
  }
  section.append(el('h4', null, 'Responses'), responsesBlock(doc, op.responses || {}));
  return section;
}

function render(doc) {
  document.getElementById('title').textContent = `${doc.info.title} API reference`;
  document.getElementById('version').textContent = `Version ${doc.info.version} · OpenAPI ${doc.openapi}`;
  document.getElementById('description').replaceChildren(prose(doc.info.description));

  const schemes = Object.entries((doc.components || {}).securitySchemes || {});
  if (schemes.length) {
    const list = document.getElementById('schemes');
    for (const [name, scheme] of schemes) {
      list.append(el('dt', null, el('code', null, name), ` — ${scheme.type} ${scheme.scheme || ''}`),
        el('dd', null, prose(scheme.description)));
    }
    document.getElementById('auth').hidden = false;
  }

  const byTag = new Map((doc.tags || []).map((tag) => [tag.name, { tag, ops: [] }]));
  for (const [path, item] of Object.entries(doc.paths || {})) {
    for (const method of METHODS) {
      const op = item[method];
      if (!op) continue;
      const name = (op.tags && op.tags[0]) || 'other';
      if (!byTag.has(name)) byTag.set(name, { tag: { name }, ops: [] });
      byTag.get(name).ops.push({ path, method, op });
    }
  }
  const nav = document.getElementById('nav');
  const operations = document.getElementById('operations');
  for (const { tag, ops } of byTag.values()) {
    if (!ops.length) continue;
    const section = el('section', 'docs__tag');
    section.id = anchor('tag', tag.name);
    section.append(el('h2', null, tag.name));
    if (tag.description) section.append(prose(tag.description));
    const links = el('ul');
    for (const { path, method, op } of ops) {
      const block = operationBlock(doc, path, method, op);
      section.append(block);
      const link = el('a', null, el('span', `docs__method docs__method--${method}`, method.toUpperCase()), ' ', path);
      link.href = `#${block.id}`;
      links.append(el('li', null, link));
    }
    const heading = el('a', null, tag.name);
    heading.href = `#${section.id}`;
    nav.append(el('li', null, heading, links));
    operations.append(section);
  }

  const schemaList = document.getElementById('schema-list');
  for (const [name, schema] of Object.entries((doc.components || {}).schemas || {})) {
    const block = el('article', 'docs__op');
    block.id = anchor('schema', name);
    block.append(el('h3', null, el('code', null, name)));
    if (schema.description) block.append(prose(schema.description));
    block.append(schemaBody(doc, schema));
    schemaList.append(block);
  }
  document.getElementById('schemas').hidden = false;
  const heading = el('a', null, 'Schemas');
  heading.href = '#schemas';
  nav.append(el('li', null, heading));
  document.getElementById('status').hidden = true;
  if (location.hash) document.getElementById(location.hash.slice(1))?.scrollIntoView();
}

async function main() {
  const status = document.getElementById('status');
  try {
    const response = await fetch('/api/v1/openapi.json', { headers: { Accept: 'application/json' } });
    if (!response.ok) throw new Error(`the server answered ${response.status}`);
    render(await response.json());
  } catch (error) {
    status.textContent = `Could not load the API description: ${error.message}`;
  }
}

main();
