// The options of console authorization and the console proxies, under nova.conf's names.
import { registerOpts } from '../../common/config.ts';

registerOpts([
  { section: 'consoleauth', name: 'token_ttl', type: 'int', default: 600, min: 1, help: 'Seconds a console token stays valid after it is issued (honoured to the millisecond).' },
  { section: 'consoleauth', name: 'single_use', type: 'bool', default: true, help: 'A console token opens one connection only (a replayed token is refused). Nova lets a token be reused until it expires; set false for that. Stratus picks the safer default.' },
  { section: 'vnc', name: 'enabled', type: 'bool', default: true, help: 'VNC consoles (noVNC) are offered.' },
  { section: 'vnc', name: 'novncproxy_base_url', type: 'url', default: 'http://127.0.0.1:6080/vnc_auto.html', help: 'URL of the noVNC page handed out by the console APIs (the token is appended). The all-in-one uses its own /novnc path unless set.' },
  { section: 'vnc', name: 'novncproxy_host', type: 'string', default: '0.0.0.0', help: 'Address `stratus serve novncproxy` listens on (--bind overrides).' },
  { section: 'vnc', name: 'novncproxy_port', type: 'int', default: 6080, min: 0, max: 65535, help: 'Port `stratus serve novncproxy` listens on (--port overrides).' },
  { section: 'spice', name: 'enabled', type: 'bool', default: true, help: 'SPICE consoles (spice-html5) are offered.' },
  { section: 'spice', name: 'html5proxy_base_url', type: 'url', default: 'http://127.0.0.1:6082/spice_auto.html', help: 'URL of the SPICE page handed out by the console APIs (the token is appended). The all-in-one uses its own /spice path unless set.' },
  { section: 'spice', name: 'html5proxy_host', type: 'string', default: '0.0.0.0', help: 'Address `stratus serve spicehtml5proxy` listens on.' },
  { section: 'spice', name: 'html5proxy_port', type: 'int', default: 6082, min: 0, max: 65535, help: 'Port `stratus serve spicehtml5proxy` listens on.' },
  { section: 'serial_console', name: 'enabled', type: 'bool', default: true, help: 'Serial consoles (websocket) are offered.' },
  { section: 'serial_console', name: 'base_url', type: 'url', default: 'ws://127.0.0.1:6083/', help: 'Websocket URL handed out for serial consoles (the token is appended). The all-in-one uses its own /serial path unless set.' },
  { section: 'serial_console', name: 'serialproxy_host', type: 'string', default: '0.0.0.0', help: 'Address `stratus serve serialproxy` listens on.' },
  { section: 'serial_console', name: 'serialproxy_port', type: 'int', default: 6083, min: 0, max: 65535, help: 'Port `stratus serve serialproxy` listens on.' },
  { section: 'console', name: 'allowed_origins', type: 'list', default: [], help: 'Origins (host names) besides the proxy\'s own that browsers may open consoles from.' },
]);
