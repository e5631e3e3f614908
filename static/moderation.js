// The moderation page's keys: J/K move between photos, X selects one, A
// approves and R rejects the selected photos (or the current one when none
// is selected). The forms work without this script.
(() => {
  'use strict';
  // The reason filter applies as soon as it changes (a button does it
  // without JavaScript); no inline handler, which the CSP forbids.
  document.querySelectorAll('select[data-autosubmit]').forEach((sel) => {
    sel.addEventListener('change', () => sel.form.requestSubmit());
  });
  const form = document.getElementById('moderation-form');
  if (!form) return;
  const items = () => Array.from(document.querySelectorAll('.mod-item'));
  let current = 0;

  const focus = (i) => {
    const all = items();
    if (all.length === 0) return;
    current = Math.max(0, Math.min(all.length - 1, i));
    all.forEach((el, j) => el.classList.toggle('current', j === current));
    all[current].focus();
  };

  const decide = (decision) => {
    const all = items();
    const boxes = Array.from(form.querySelectorAll('input[name="image_ids"]'));
    if (!boxes.some((b) => b.checked) && all[current]) {
      const box = all[current].querySelector('input[name="image_ids"]');
      if (box) box.checked = true;
    }
    const button = document.getElementById(decision === 'approve' ? 'bulk-approve' : 'bulk-reject');
    form.requestSubmit(button);
  };

  document.addEventListener('keydown', (e) => {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    const t = e.target;
    if (t instanceof HTMLInputElement && t.type === 'text') return; // typing a reason
    switch (e.key.toLowerCase()) {
      case 'j': case 'arrowdown': focus(current + 1); break;
      case 'k': case 'arrowup': focus(current - 1); break;
      case 'x': {
        const box = items()[current]?.querySelector('input[name="image_ids"]');
        if (box) box.checked = !box.checked;
        break;
      }
      case 'a': decide('approve'); break;
      case 'r': decide('reject'); break;
      default: return;
    }
    e.preventDefault();
  });
  items().forEach((el, i) => el.addEventListener('focus', () => {
    current = i;
    items().forEach((other, j) => other.classList.toggle('current', j === i));
  }));
  focus(0);
})();
