// Starts GraphiQL against this server's /graphql (queries) and /graphql/ws (subscriptions),
// with the API key kept in this browser's local storage.
const key = localStorage.getItem('ledgerKey') || prompt('API key (read scope)');
localStorage.setItem('ledgerKey', key);
const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
const fetcher = GraphiQL.createFetcher({
  url: '/graphql',
  subscriptionUrl: `${scheme}://${location.host}/graphql/ws`,
  headers: { Authorization: `Bearer ${key}` },
  wsConnectionParams: { Authorization: `Bearer ${key}` },
});
ReactDOM.createRoot(document.getElementById('graphiql')).render(React.createElement(GraphiQL, { fetcher }));
