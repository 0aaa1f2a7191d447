-- fragment: where an event came from, the columns every event feed returns after the actor:
--   the client (address, OAuth client, user agent and its parts, device), its place
--   (city, state, country), its network (AS number and organisation, ISP, domain, proxy) and
--   the request's address chain: {{ client_columns }}
client_ip, client_id, user_agent, ua_browser, ua_os, client_device,
       geo_city, geo_state, geo_country, as_number, as_org, isp, ip_domain, is_proxy,
       ip_chain
