/**
 * `walguard/metrics`: the Prometheus exporter and the diagnostics channels, kept out of the
 * main entry point so that apps without metrics never load prom-client.
 */
export {
  CHANNELS,
  type ChannelMessages,
  type ChannelName,
  hasSubscribers,
  publish,
  subscribe,
} from './channels.js';
export {
  type MetricsSource,
  PrometheusExporter,
  type PrometheusExporterOptions,
  prometheusText,
  type WatchOptions,
} from './prometheus-exporter.js';
