/*! Staryer embeds: a creator's pricing table, usage meter or upgrade prompt on its own site.
 *    <div data-staryer-embed="pricing" data-staryer-key="pk_live_..."></div>
 *    <script src="https://<daemon>/embed.js" async></script>
 * or <staryer-embed embed="pricing" key="pk_live_..."></staryer-embed>
 * Optional: customer-token (a customer session token), api (default: this script's origin).
 * Style from outside: staryer-embed { --staryer-primary: #0a7; } (also -bg, -text, -font, -radius). */

// Hand-written, no build step: the daemon serves this file as it is (gzipped, with an ETag).
// Everything that comes from the server or a config reaches the page as text nodes or
// attribute values, never as markup.
(() => {
  'use strict';
  if (!window.customElements || customElements.get('staryer-embed')) return;

  // currentScript is only set while this script first runs: the default API base is read now.
  const script = document.currentScript;
  const home = script && script.src ? new URL(script.src, location.href).origin : location.origin;

  // One id per browser, so that a visitor keeps its experiment variant across visits; in
  // memory when storage is refused (privacy modes).
  let memoryVisitor;
  const newId = () =>
    crypto.randomUUID
      ? crypto.randomUUID()
      : Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => (b + 256).toString(16).slice(1)).join('');
  const visitor = () => {
    try {
      let id = localStorage.getItem('staryer_visitor');
      if (!id) localStorage.setItem('staryer_visitor', (id = newId()));
      return id;
    } catch (_) {
      return (memoryVisitor ||= newId());
    }
  };

  // h('p', {class: 'x', onclick: f}, 'text', child): an element; strings become text nodes.
  const h = (tag, attrs, ...kids) => {
    const el = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {}))
      if (value == null || value === false) continue;
      else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
      else el.setAttribute(name, value);
    el.append(...kids.filter((kid) => kid || kid === 0));
    return el;
  };

  const CSS = `:host{--staryer-primary:#4f46e5;--staryer-bg:#fff;--staryer-text:#1f2937;--staryer-font:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;--staryer-radius:8px;display:block;color:var(--staryer-text);font:16px/1.5 var(--staryer-font)}
:host([hidden]){display:none}*{box-sizing:border-box}p,h2,h3,ul{margin:0}h2{font-size:1.5em;line-height:1.2}h3{font-size:1.15em}
.muted{opacity:.75}.err{color:#b91c1c;font-size:.9em}.err:empty{display:none}
.grid{display:grid;grid-template-columns:repeat(auto-fit,minmax(min(100%,15rem),1fr));gap:1rem;list-style:none;padding:0;margin-top:1rem}
.card,.panel{background:var(--staryer-bg);border:1px solid #8886;border-radius:var(--staryer-radius);padding:1.25rem;display:flex;flex-direction:column;gap:.75rem;min-width:0;overflow-wrap:anywhere}
.hl{border:2px solid var(--staryer-primary)}
.badge{align-self:flex-start;background:var(--staryer-primary);color:#fff;border-radius:99px;padding:0 .6em;font-size:.8em;font-weight:600}
.price{font-size:1.9em;font-weight:700}.price small{font-size:.45em;font-weight:400;opacity:.75}
.card ul{padding-left:1.3em;list-style:"\\2713  "}.card li::marker{color:var(--staryer-primary)}.card .caps{list-style:none;padding:0;font-weight:600}
button{margin-top:auto;align-self:stretch;font:inherit;font-weight:600;padding:.6em 1em;border:0;border-radius:var(--staryer-radius);background:var(--staryer-primary);color:#fff;cursor:pointer}
button:hover{filter:brightness(1.1)}button:focus-visible{outline:3px solid var(--staryer-primary);outline-offset:2px}button:disabled{opacity:.55;cursor:default;filter:none}
.row{display:flex;justify-content:space-between;flex-wrap:wrap;gap:0 1em}
.bar{height:.5rem;border-radius:99px;background:#8884;overflow:hidden}.bar>i{display:block;height:100%;background:var(--staryer-primary)}
.warn>i{background:#d97706}.over>i{background:#dc2626}
.prompt{border-left:4px solid var(--staryer-primary)}.prompt button{align-self:flex-start}`;

  // Fails with the server's error code and message (`{"error": {"code", "message"}}`).
  // The key goes in the query string so that CORS preflights carry it too.
  async function call(el, method, path, body, query, keepalive) {
    const url = new URL(el.api.replace(/\/+$/, '') + path);
    for (const [name, value] of Object.entries({ ...query, key: el.key })) url.searchParams.set(name, value);
    const headers = body ? { 'Content-Type': 'application/json' } : {};
    if (el.token) headers['X-Staryer-Customer-Token'] = el.token;
    const answer = await fetch(url, { method, headers, body: body && JSON.stringify(body), credentials: 'omit', keepalive });
    const data = await answer.json().catch(() => ({}));
    if (answer.ok) return data;
    throw Object.assign(new Error((data.error && data.error.message) || 'HTTP ' + answer.status), {
      code: data.error && data.error.code,
      data,
    });
  }

  class StaryerEmbed extends HTMLElement {
    static get observedAttributes() {
      return ['embed', 'key', 'customer-token', 'api'];
    }

    connectedCallback() {
      if (!this.shadowRoot) this.load();
    }

    attributeChangedCallback() {
      // A token set after sign-in (or any other change) once the widget is showing.
      if (this.shadowRoot) this.load();
    }

    async load() {
      const attr = (name) => this.getAttribute(name);
      this.embed = attr('embed');
      this.key = attr('key');
      this.token = attr('customer-token');
      this.api = attr('api') || home;
      const turn = (this.turn = (this.turn || 0) + 1);
      const root = this.shadowRoot || this.attachShadow({ mode: 'open' });
      const style = h('style', null, CSS);
      const show = (...nodes) => turn === this.turn && root.replaceChildren(style, ...nodes);
      this.hidden = false;
      if (!this.embed || !this.key) return console.warn('staryer-embed: needs an embed and a publishable key');
      show(h('p', { class: 'muted', role: 'status' }, 'Loading…'));
      let data, nodes;
      try {
        data = await call(this, 'GET', '/v1/embed/' + encodeURIComponent(this.embed), null, { visitor_id: visitor() });
        if (turn !== this.turn) return;
        nodes = (render[data.kind] || (() => []))(this, data, format(data.config.locale));
      } catch (error) {
        if (turn !== this.turn) return;
        console.warn(`staryer-embed "${this.embed}": ${error.message}`);
        if (/customer_token/.test(error.code)) {
          const config = error.data.config || {};
          return show(h('p', { class: 'panel' }, text(config, 'signed_out', 'Sign in to see your usage.')));
        }
        if (error.code === 'embed_not_found') return show(), (this.hidden = true);
        return show(h('p', { class: 'err', role: 'alert' }, 'This widget could not be loaded.'));
      }
      const theme = data.config.theme || {};
      show(...nodes);
      // On the host through :host, so that a creator's own rules for the element win.
      const rule = style.sheet && style.sheet.cssRules[0];
      for (const [name, value] of Object.entries({
        primary: theme.primary_color,
        bg: theme.background_color,
        text: theme.text_color,
        font: theme.font_family,
        radius: theme.radius_px != null && theme.radius_px + 'px',
      }))
        if (rule && value) rule.style.setProperty('--staryer-' + name, value);
    }

    // Buy `tier`: a click event, a checkout session, then off to Stripe. The events never
    // hold the purchase up.
    async buy(tier, button, error) {
      const event = (type) =>
        call(this, 'POST', '/v1/embed/events', { embed: this.embed, visitor_id: visitor(), type }, null, true).catch(() => {});
      event('click');
      button.disabled = true;
      error.textContent = '';
      try {
        const { url } = await call(this, 'POST', '/v1/embed/checkout', { embed: this.embed, tier, visitor_id: visitor() });
        event('checkout_started');
        window.location.assign(url);
      } catch (failure) {
        error.textContent = failure.message;
        button.disabled = false;
      }
    }
  }

  const text = (config, name, fallback) => (config.texts && config.texts[name]) || fallback;

  // Number, money and date formatting in the config's locale (the browser's by default).
  function format(wanted) {
    let locale;
    try {
      locale = Intl.getCanonicalLocales(wanted || navigator.language)[0];
    } catch (_) {}
    const number = new Intl.NumberFormat(locale);
    return {
      number: (n) => number.format(n),
      // Minor units into the currency's own major unit (cents for usd, none for jpy).
      money(price) {
        const money = new Intl.NumberFormat(locale, { style: 'currency', currency: price.currency });
        return money.format(price.amount / 10 ** money.resolvedOptions().maximumFractionDigits);
      },
      date: (iso) => new Intl.DateTimeFormat(locale, { dateStyle: 'medium', timeZone: 'UTC' }).format(new Date(iso)),
    };
  }

  // "10,000 API calls", or "Storage: 5 GB" when the name does not say the unit.
  function quantity(meter, amount) {
    const unit = meter.unit || 'units';
    return unit === 'units' || meter.name.toLowerCase().includes(unit.toLowerCase())
      ? `${amount} ${meter.name}`
      : `${meter.name}: ${amount} ${unit}`;
  }

  const meterOf = (data, key) => (data.meters || []).find((m) => m.key === key) || { key, name: key || '' };
  const heading = (config, fallback) => {
    const title = text(config, 'title', fallback);
    return title && h('h2', null, title);
  };
  const buyButton = (el, tier, label) => {
    const error = h('p', { class: 'err', role: 'alert' });
    const button = h('button', { type: 'button', onclick: () => el.buy(tier.key, button, error) }, label);
    return [button, error];
  };

  const render = {
    pricing_table(el, data, f) {
      const { config } = data;
      const cards = data.tiers.map((tier) => {
        const { price } = tier;
        const highlighted = tier.key === config.highlight;
        const caps = Object.entries(tier.caps || {}).map(([key, cap]) => {
          const meter = meterOf(data, key);
          const per = { month: 'month', day: 'day', billing_cycle: price.interval, never: '' }[meter.reset];
          return h('li', null, quantity(meter, f.number(cap.limit)) + ((per ?? price.interval) ? ' / ' + (per ?? price.interval) : ''));
        });
        // Features are keys (`priority_support`): shown with spaces.
        const features = (tier.features || []).map((feature) => h('li', null, feature.replace(/[_-]+/g, ' ')));
        return h(
          'li',
          { class: highlighted ? 'card hl' : 'card', 'data-tier': tier.key },
          highlighted ? h('p', { class: 'badge' }, text(config, 'highlight_label', 'Most popular')) : null,
          h('h3', null, tier.name),
          h('p', { class: 'price' }, f.money(price), price.amount ? h('small', null, ' / ' + price.interval) : null),
          caps.length ? h('ul', { class: 'caps' }, ...caps) : null,
          features.length ? h('ul', { class: 'features' }, ...features) : null,
          ...(price.amount ? buyButton(el, tier, text(config, 'cta', 'Subscribe')) : []),
        );
      });
      return [
        heading(config),
        config.texts && config.texts.subtitle ? h('p', { class: 'muted' }, config.texts.subtitle) : null,
        h('ul', { class: 'grid', role: 'list' }, ...cards),
      ].filter(Boolean);
    },

    usage_meter(el, data, f) {
      const { config } = data;
      const customer = data.customer || {};
      const tier = data.tiers[0] || {};
      const all = customer.usage || [];
      // The configured meters in order; by default those the customer's tier caps.
      const keys = config.meters || all.filter((u) => u.limit != null).map((u) => u.meter);
      const rows = keys.map((key) => all.find((u) => u.meter === key)).filter(Boolean).map((u) => {
        const meter = meterOf(data, u.meter);
        const cap = (tier.caps || {})[u.meter] || {};
        const line =
          u.limit == null ? quantity(meter, f.number(u.used)) : quantity(meter, `${f.number(u.used)} of ${f.number(u.limit)}`);
        const share = u.limit ? Math.min(1, u.used / u.limit) : u.limit === 0 ? 1 : 0;
        const state = u.limit != null && u.used >= u.limit ? ' over' : share >= (cap.warn_at ?? 0.8) ? ' warn' : '';
        const bar =
          u.limit != null &&
          h('div', {
            class: 'bar' + state,
            role: 'progressbar',
            'aria-label': meter.name,
            'aria-valuemin': 0,
            'aria-valuemax': u.limit,
            'aria-valuenow': Math.min(u.used, u.limit),
            'aria-valuetext': line,
          }, h('i', { style: `width:${(share * 100).toFixed(1)}%` }));
        return h(
          'div',
          { class: 'meter', 'data-meter': u.meter },
          h('p', { class: 'row' }, h('strong', null, meter.name), h('span', null, line)),
          bar || null,
          u.period_end ? h('p', { class: 'muted' }, 'Resets ' + f.date(u.period_end)) : null,
        );
      });
      return [h('section', { class: 'panel' }, heading(config, 'Usage'), ...rows)];
    },

    upgrade_prompt(el, data, f) {
      const { config } = data;
      const prompt = (data.customer || {}).prompt || {};
      const tier = data.tiers[0];
      if (!prompt.show || !tier) return (el.hidden = true), [];
      const meter = meterOf(data, prompt.meter);
      const reached = prompt.limit != null && prompt.used >= prompt.limit;
      return [
        h(
          'section',
          { class: 'panel prompt', role: reached ? 'alert' : 'status' },
          heading(config, reached ? 'You have reached your limit' : 'You are close to your limit'),
          h('p', null, text(config, 'body', `Upgrade to ${tier.name} for more.`)),
          prompt.meter && h('p', { class: 'muted' }, quantity(meter, prompt.limit == null ? f.number(prompt.used) : `${f.number(prompt.used)} of ${f.number(prompt.limit)}`)),
          ...buyButton(el, tier, text(config, 'cta', 'Upgrade')),
        ),
      ];
    },
  };

  customElements.define('staryer-embed', StaryerEmbed);

  // <div data-staryer-embed> becomes the host of a <staryer-embed>, now and whenever the
  // page adds one later.
  const mounted = new WeakSet();
  const scan = () =>
    document.querySelectorAll('[data-staryer-embed]').forEach((div) => {
      if (mounted.has(div)) return;
      mounted.add(div);
      const el = document.createElement('staryer-embed');
      for (const name of StaryerEmbed.observedAttributes) {
        const value = div.getAttribute('data-staryer-' + name);
        if (value != null) el.setAttribute(name, value);
      }
      div.append(el);
    });
  scan();
  new MutationObserver(scan).observe(document.documentElement, { childList: true, subtree: true });
})();
