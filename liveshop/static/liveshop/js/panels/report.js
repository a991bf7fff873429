// A viewer's "Report" on someone else's comment: a reason, then
// POST /comments/{id}/reports/ {reason}; staff see it in their queue.

import {post} from '../lib/api.js';
import {h} from '../lib/dom.js';
import {errorMessage, gettext} from '../lib/format.js';

const REASONS = () => [
  ['spam', gettext('Spam or ads')],
  ['abuse', gettext('Abuse or harassment')],
  ['fraud', gettext('Scam or fraud')],
  ['other', gettext('Something else')],
];

/** The `actions` of mountComments for viewers. */
export function reportActions({config}) {
  return {
    menu(comment) {
      const box = h('span', {class: 'report-menu'});
      const opener = h('button', {class: 'link report', type: 'button', 'data-testid': 'report'}, gettext('Report'));
      const send = async (reason) => {
        try {
          await post(`/comments/${comment.id}/reports/`, {reason});
          box.replaceChildren(h('span', {class: 'hint', 'data-testid': 'reported'}, gettext('Reported. Thank you.')));
        } catch (err) {
          box.replaceChildren(h('span', {class: 'error'}, errorMessage(err)));
        }
      };
      opener.addEventListener('click', () => {
        if (!config.user) {
          location.href = config.login_url;
          return;
        }
        box.replaceChildren(
          ...REASONS().map(([code, label]) =>
            h('button', {class: 'button small', type: 'button', dataset: {reason: code}, onclick: () => send(code)}, label)),
          h('button', {class: 'link', type: 'button', onclick: () => box.replaceChildren(opener)}, gettext('Cancel')),
        );
      });
      box.append(opener);
      return box;
    },
  };
}
