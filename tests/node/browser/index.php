<?php header('Content-Type: text/html; charset=utf-8'); ?>
<!doctype html>
<html>
<head>
<meta charset="utf-8">
<title>portico browser test</title>
<!-- The browser builds shipped in the npm packages, copied into the docroot. -->
<script src="/vendor/pusher.min.js"></script>
<script src="/vendor/echo.iife.js"></script>
</head>
<body>
<h1>portico × laravel-echo</h1>
<pre id="log"></pre>
<script>
  // What a Laravel app's resources/js/echo.js does with broadcaster 'reverb',
  // with REVERB_HOST/REVERB_PORT pointing at portico (this page's origin).
  const out = document.getElementById('log');
  const t = { states: [], events: [], whispers: [], errors: [], ready: {} };
  window.t = t;
  const note = (line) => { out.textContent += line + '\n'; };
  const echo = new Echo.default({
    broadcaster: 'reverb',
    key: <?= json_encode(getenv('PUSHER_APP_KEY')) ?>,
    wsHost: location.hostname,
    wsPort: Number(location.port),
    wssPort: Number(location.port),
    forceTLS: true,
    enabledTransports: ['ws', 'wss'],
    disableStats: true,
  });
  window.echo = echo;
  echo.connector.pusher.connection.bind('state_change', (s) => { t.states.push(s.current); note('state ' + s.current); });
  echo.channel('news')
    .subscribed(() => { t.ready.news = true; note('subscribed news'); })
    .listen('OrderShipped', (e) => { t.events.push(e); note('OrderShipped ' + JSON.stringify(e)); });
  echo.private('chat')
    .subscribed(() => { t.ready.chat = true; note('subscribed private-chat'); })
    .listenForWhisper('typing', (e) => { t.whispers.push(e); note('whisper ' + JSON.stringify(e)); })
    .error((e) => { t.errors.push(e); note('error ' + JSON.stringify(e)); });
  window.whisper = (payload) => echo.private('chat').whisper('typing', payload);
</script>
</body>
</html>
