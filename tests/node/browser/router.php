<?php
// Router for `php -S`: the "Laravel app" behind portico in the Chromium test.
// /broadcasting/auth signs private-channel subscriptions the way Laravel's
// Broadcast::auth() does (pusher-php-server: HMAC-SHA256 of
// "socket_id:channel_name" with the app secret); every other path is a
// static file from the docroot (index.php renders the page).
$path = parse_url($_SERVER['REQUEST_URI'], PHP_URL_PATH);

if ($path === '/broadcasting/auth') {
    header('Content-Type: application/json');
    $socketId = $_POST['socket_id'] ?? '';
    $channel = $_POST['channel_name'] ?? '';
    if ($_SERVER['REQUEST_METHOD'] !== 'POST'
        || !preg_match('/^\d+\.\d+$/', $socketId)
        || !str_starts_with($channel, 'private-')
        || $channel === 'private-forbidden') {
        http_response_code(403);
        echo json_encode(['message' => 'This action is unauthorized.']);
        return true;
    }
    $key = getenv('PUSHER_APP_KEY');
    $secret = getenv('PUSHER_APP_SECRET');
    $signature = hash_hmac('sha256', $socketId . ':' . $channel, $secret);
    // php -S logs no line for a request its router answers; the test reads this.
    error_log("broadcasting/auth signed $channel for $socketId");
    echo json_encode(['auth' => $key . ':' . $signature]);
    return true;
}

return false;
