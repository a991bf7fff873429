// The service worker of Web Push: shows what liveshop pushes (a notification with its
// words, `{title, body, url}`, written by the server in the page's language) while no page
// is open, and opens its page when tapped. Registered by bell.js.

self.addEventListener('push', (event) => {
  const pushed = event.data ? event.data.json() : null;
  if (!pushed) return;
  event.waitUntil(self.registration.showNotification(pushed.title || 'liveshop', {
    body: pushed.body || '',
    tag: `liveshop-${pushed.id}`,
    icon: '/static/liveshop/img/icon.svg',
    data: {url: pushed.url || '/'},
  }));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(self.clients.openWindow(event.notification.data.url));
});
