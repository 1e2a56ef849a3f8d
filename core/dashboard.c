/*
 * dashboard.c: the operator's page, its JSON, Prometheus metrics and health probes — read
 * from the store on the dashboard's own connection, behind the admin token.
 */
#include "dashboard.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "events.h"
#include "ingest.h"
#include "ledger.h"
#include "log.h"
#include "model.h"
#include "outbox.h"
#include "policy.h"
#include "records.h"
#include "sink_state.h"
#include "store.h"
#include "util.h"

#define SESSION_MAX_AGE_S 43200 /* the cookie lasts 12 hours */
#define ACTIVITY_DAYS     14
#define DAY_MS            86400000LL
#define DLQ_SHOW          200 /* newest dead letters listed (the total is always given) */
#define FAILED_SHOW       20  /* failed or unknown messages among the recent errors */
#define DETAIL_MAX        320
#define CSRF_HEADER       "X-Odsync-Action"
#define HTML_TYPE         "text/html; charset=utf-8"
#define METRICS_TYPE      "text/plain; version=0.0.4; charset=utf-8"

struct dashboard {
    const struct config *cfg; /* borrowed */
    char *store_path;         /* owned: /readyz opens it afresh */
    struct store *st;         /* owned */
    pthread_mutex_t lock;     /* the connection serves one request at a time */
    char *page;               /* owned: the dashboard page */
    char *page_csp;           /* owned: its Content-Security-Policy (hashes of its style and
                                 script) */
    char *login_csp;          /* owned: the sign-in page's (its style only) */
};

/* ---- the page ------------------------------------------------------------------------- */

static const char page_css[] =
    ":root{--bg:#f4f6f9;--card:#fff;--ink:#1f2933;--muted:#66788a;--line:#e3e8ee;"
    "--ok:#23784a;--warn:#a86510;--bad:#b42318;--a1:#2f6fb3;--a2:#d9922b}"
    "*{box-sizing:border-box}"
    "body{margin:0;font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;"
    "background:var(--bg);color:var(--ink)}"
    "header{display:flex;align-items:center;gap:14px;padding:12px 24px;background:#1f2933;"
    "color:#fff}"
    "header h1{font-size:17px;margin:0;font-weight:600;letter-spacing:.02em}"
    "header .meta{color:#c5ced8;font-size:12px;margin-left:auto}"
    "header button{background:transparent;color:#fff;border:1px solid #52606d;border-radius:6px;"
    "padding:4px 10px;cursor:pointer;font:inherit;font-size:12px}"
    "header button:hover{background:#323f4b}"
    "main{max-width:1280px;margin:0 auto;padding:20px 24px 48px}"
    ".tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(130px,1fr));gap:12px;"
    "margin-bottom:20px}"
    ".tile{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:12px 14px}"
    ".tile .v{font-size:26px;font-weight:600;font-variant-numeric:tabular-nums}"
    ".tile .l{color:var(--muted);font-size:11px;text-transform:uppercase;letter-spacing:.05em}"
    ".tile.alert .v{color:var(--bad)}"
    "section{background:var(--card);border:1px solid var(--line);border-radius:8px;"
    "padding:14px 16px;margin-bottom:20px;overflow-x:auto}"
    "section h2{font-size:14px;margin:0 0 10px;font-weight:600}"
    "section h3{font-size:13px;margin:12px 0 6px;color:var(--muted);font-weight:600}"
    ".cols{display:grid;grid-template-columns:repeat(auto-fit,minmax(440px,1fr));gap:20px}"
    ".cols>section{margin-bottom:0}"
    ".gap{height:20px}"
    "table{width:100%;border-collapse:collapse;font-variant-numeric:tabular-nums}"
    "th,td{text-align:left;padding:6px 8px;border-bottom:1px solid var(--line);"
    "vertical-align:top}"
    "th{color:var(--muted);font-weight:500;font-size:12px;white-space:nowrap}"
    "td.n,th.n{text-align:right}"
    "tr:last-child td{border-bottom:0}"
    ".badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;"
    "font-weight:600;white-space:nowrap}"
    ".b-ok{background:#e3f6e9;color:var(--ok)}.b-warn{background:#fff4de;color:var(--warn)}"
    ".b-bad{background:#fde8e7;color:var(--bad)}.b-mute{background:#edf1f5;color:var(--muted)}"
    ".muted{color:var(--muted)}.small{font-size:12px}"
    ".empty{color:var(--muted);font-style:italic;margin:4px 0}"
    "code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}"
    ".funnel{margin:4px 0 10px}"
    ".frow{display:grid;grid-template-columns:84px 1fr 56px;align-items:center;gap:8px;"
    "margin:3px 0}"
    ".track{background:#edf1f5;border-radius:3px;height:14px}"
    ".bar{height:14px;border-radius:3px;background:var(--a1);min-width:2px}"
    ".bar.f-reminded{background:#4c8fd6}.bar.f-scheduled{background:var(--ok)}"
    ".bar.f-overdue{background:var(--bad)}"
    ".frow .n{text-align:right;font-variant-numeric:tabular-nums}"
    "button.act{font:inherit;font-size:12px;padding:2px 10px;border-radius:5px;cursor:pointer;"
    "border:1px solid var(--line);background:#fff;margin-right:4px}"
    "button.act:hover{border-color:var(--a1);color:var(--a1)}"
    "button.act.drop:hover{border-color:var(--bad);color:var(--bad)}"
    "button.act:disabled{opacity:.5;cursor:default}"
    "#banner{display:none;margin:0 0 16px;padding:10px 14px;border-radius:8px;"
    "background:#fde8e7;color:var(--bad);border:1px solid #f5c2bf}"
    "#banner.show{display:block}"
    ".legend{display:flex;gap:16px;font-size:12px;color:var(--muted);margin-bottom:6px}"
    ".key{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:5px}"
    ".k1{background:var(--a1)}.k2{background:var(--a2)}"
    "svg.chart{width:100%;height:auto;max-height:240px}"
    "svg.chart text{font-size:10px;fill:var(--muted)}"
    "svg.chart .grid{stroke:var(--line);stroke-width:1}"
    "svg.chart .s1{fill:var(--a1)}svg.chart .s2{fill:var(--a2)}"
    ".login{max-width:440px;margin:80px auto}"
    ".login input{font:inherit;padding:6px 8px;border:1px solid var(--line);border-radius:6px;"
    "width:100%;margin:6px 0 10px}"
    ".login button{font:inherit;padding:6px 14px;border-radius:6px;border:0;background:var(--a1);"
    "color:#fff;cursor:pointer}";

/* The page's script: fetch /api/dashboard and render it with DOM calls only (text goes in as
 * text, never as markup); actions POST with the CSRF header. */
static const char page_js[] =
    "'use strict';(function(){"
    "var renders=0,busy=false,last=null;"
    "function h(t,a,k){var e=document.createElement(t);if(a)for(var n in a)"
    "if(a[n]!==null&&a[n]!==undefined)e.setAttribute(n,a[n]);"
    "(k||[]).forEach(function(c){if(c===null||c===undefined)return;"
    "e.appendChild(typeof c==='object'?c:document.createTextNode(String(c)));});return e;}"
    "function num(n){return Number(n).toLocaleString('en-US');}"
    "function iso(ms){return new Date(ms).toISOString().replace('T',' ').slice(0,19)+' UTC';}"
    "function dur(s){if(s<0)return '\\u2013';if(s<90)return s+' s';if(s<5400)"
    "return Math.round(s/60)+' min';if(s<172800)return Math.round(s/3600)+' h';"
    "return Math.round(s/86400)+' d';}"
    "function ago(ms,now){if(!ms)return h('span',{'class':'muted'},['never']);"
    "return h('span',{title:iso(ms)},[dur(Math.max(0,Math.round((now-ms)/1000)))+' ago']);}"
    "function badge(text,kind){return h('span',{'class':'badge b-'+kind},[text]);}"
    "function odKind(s){return s==='ok'?'ok':s==='unknown'?'mute':'bad';}"
    "function cell(v,cls,col){return h('td',{'class':cls||null,'data-col':col||null},[v]);}"
    "function table(cols,rows,attrs){var head=h('tr',null,cols.map(function(c){"
    "return h('th',{'class':c[1]?'n':null},[c[0]]);}));"
    "return h('table',attrs||null,[h('thead',null,[head]),h('tbody',null,rows)]);}"
    "function sec(title,kids,attrs){return h('section',attrs||null,"
    "[h('h2',null,[title])].concat(kids));}"
    "function empty(t){return h('p',{'class':'empty'},[t]);}"
    "function tile(label,v,metric,alert){return h('div',{'class':'tile'+(alert?' alert':'')},"
    "[h('div',{'class':'v','data-metric':metric},[num(v)]),h('div',{'class':'l'},[label])]);}"
    "function sum(a,f){return a.reduce(function(t,x){return t+f(x);},0);}"
    "function banner(t){var b=document.getElementById('banner');b.textContent=t||'';"
    "b.className=t?'show':'';}"
    /* actions */
    "function act(id,what){if(busy)return;"
    "if(what==='drop'&&!window.confirm('Drop dead letter '+id+'? It will not be delivered.'))"
    "return;busy=true;fetch('/api/dlq/'+encodeURIComponent(id)+'/'+what,{method:'POST',"
    "credentials:'same-origin',headers:{'X-Odsync-Action':'1'}}).then(function(r){"
    "return r.json().then(function(j){if(!r.ok)throw new Error(j.error||('HTTP '+r.status));"
    "});}).then(function(){banner('');}).catch(function(e){banner(what+' failed: '+e.message);})"
    ".then(function(){busy=false;load();});}"
    "function signout(){fetch('/api/logout',{method:'POST',credentials:'same-origin',"
    "headers:{'X-Odsync-Action':'1'}}).then(function(){window.location.replace('/');});}"
    /* sections */
    "function tiles(d){var o=d.offices,s=d.sinks;"
    "return h('div',{'class':'tiles'},["
    "tile('Canonical records',d.records.total,'records'),"
    "tile('Outbox pending',sum(s,function(x){return x.pending;}),'outbox_pending'),"
    "tile('In flight',sum(s,function(x){return x.inflight;}),'outbox_inflight'),"
    "tile('Dead letters',d.dead_letters_total,'dead_letters',d.dead_letters_total>0),"
    "tile('Sent today',sum(o,function(x){return x.messages_today.sent;}),'sent_today'),"
    "tile('Held today',sum(o,function(x){return x.messages_today.held;}),'held_today'),"
    "tile('Skipped today',sum(o,function(x){return x.messages_today.skipped;}),"
    "'skipped_today'),"
    "tile('Opt-outs',sum(o,function(x){return x.opt_outs;}),'opt_outs')]);}"
    "function offices(d){if(!d.offices.length)return sec('Offices',[empty('No office "
    "configured.')]);"
    "var rows=d.offices.map(function(o){var st=h('div',null,[badge(o.opendental.state,"
    "odKind(o.opendental.state))]);if(o.opendental.state!=='ok'&&o.opendental.detail)"
    "st.appendChild(h('div',{'class':'small muted'},[o.opendental.detail]));"
    "return h('tr',{'data-office':o.id},[cell(h('div',null,[h('strong',null,[o.id]),"
    "h('div',{'class':'small muted'},[o.name])])),cell(st,null,'opendental'),"
    "cell(ago(o.last_event_ms,d.now_ms),null,'last_event'),"
    "cell(ago(o.last_reconcile_ms,d.now_ms),null,'last_reconcile'),"
    "cell(dur(o.lag_seconds),'n','lag'),"
    "cell(h('span',null,[o.tier,h('div',{'class':'small muted'},['1 request / '+"
    "o.min_interval_ms+' ms'])]),null,'tier'),"
    "cell(num(o.canonical.patients),'n','patients'),cell(num(o.canonical.recalls),'n',"
    "'recalls'),cell(num(o.canonical.appointments),'n','appointments'),"
    "cell(num(o.records),'n','records')]);});"
    "return sec('Offices: freshness and Open Dental',[table([['Office'],['Open Dental'],"
    "['Last event'],['Last reconcile'],['Lag',1],['Throttle tier'],['Patients',1],"
    "['Recalls',1],['Appointments',1],['Records',1]],rows)]);}"
    "function sinks(d){var rows=d.sinks.map(function(s){var st=s.paused?badge('paused ('+"
    "s.pause_class+')',s.pause_class==='AUTH'?'bad':'warn'):badge('running','ok');"
    "return h('tr',{'data-sink':s.name},[cell(h('strong',null,[s.name])),"
    "cell(s.plugin||'\\u2013','muted'),cell(num(s.pending),'n','pending'),"
    "cell(num(s.inflight),'n','inflight'),cell(num(s.done),'n','done'),"
    "cell(num(s.dead),'n','dead'),cell(st,null,'state')]);});"
    "var rec=d.records,kinds=h('p',{'class':'small muted'},['Records: '+num(rec.contacts)+"
    "' contacts, '+num(rec.tasks)+' tasks, '+num(rec.messages)+' messages; '+"
    "num(d.inbox_pending)+' API Events batches waiting']);"
    "return sec('Pipeline: outbox per sink',[rows.length?table([['Sink'],['Plugin'],"
    "['Pending',1],['In flight',1],['Done',1],['Dead',1],['State']],rows):"
    "empty('No sink has received anything yet.'),kinds]);}"
    "function messages(d){var kids=[];d.offices.forEach(function(o){var m=o.messages_today;"
    "kids.push(h('h3',null,[o.id+' (office-local day)']));"
    "kids.push(table([['Sent',1],['Queued',1],['Held',1],['Skipped',1],['Expired',1],"
    "['Failed',1],['Unknown',1]],[h('tr',{'data-messages':o.id},['sent','queued','held',"
    "'skipped','expired','failed','unknown'].map(function(k){return cell(num(m[k]),'n',k);}))]));"
    "if(o.reasons_today.length)kids.push(table([['Outcome'],['Reason'],['Messages',1]],"
    "o.reasons_today.map(function(r){return h('tr',null,[cell(r.state),"
    "cell(h('code',null,[r.reason||'\\u2013'])),cell(num(r.count),'n')]);}),"
    "{'class':'small'}));});"
    "return sec('Messages today',kids.length?kids:[empty('No office configured.')]);}"
    "function funnel(d){var kids=[];d.offices.forEach(function(o){var f=o.recall_funnel,"
    "steps=[['due','Due'],['reminded','Reminded'],['scheduled','Scheduled'],"
    "['overdue','Overdue']],max=Math.max(1,f.due,f.reminded,f.scheduled,f.overdue);"
    "kids.push(h('h3',null,[o.id]));var box=h('div',{'class':'funnel','data-funnel':o.id});"
    "steps.forEach(function(s){var bar=h('div',{'class':'bar f-'+s[0]});"
    "bar.style.width=(100*f[s[0]]/max)+'%';box.appendChild(h('div',{'class':'frow'},"
    "[h('span',null,[s[1]]),h('div',{'class':'track'},[bar]),"
    "h('span',{'class':'n','data-col':s[0]},[num(f[s[0]])])]));});kids.push(box);"
    "var r=o.reactivation,v=o.review;"
    "kids.push(table([['Campaign'],['Enrolled',1],['Sent',1],['Pending',1],['Skipped',1]],"
    "[h('tr',{'data-campaign':'reactivation'},[cell('Reactivation'),cell(num(r.enrolled),'n',"
    "'enrolled'),cell(num(r.sent),'n','sent'),cell(num(r.pending),'n','pending'),"
    "cell(num(r.skipped),'n','skipped')]),h('tr',{'data-campaign':'review'},"
    "[cell('Review requests'),cell('\\u2013','n muted'),cell(num(v.sent),'n','sent'),"
    "cell(num(v.pending),'n','pending'),cell(num(v.skipped),'n','skipped')])],"
    "{'class':'small'}));});"
    "return sec('Recall funnel, reactivation and reviews',kids.length?kids:"
    "[empty('No office configured.')]);}"
    "function chart(a){var NS='http://www.w3.org/2000/svg',W=640,H=200,L=36,B=24,T=10,"
    "n=a.days.length,max=1;a.messages_sent.concat(a.records_delivered).forEach(function(v)"
    "{if(v>max)max=v;});"
    "function s(t,at){var e=document.createElementNS(NS,t);for(var k in at)"
    "e.setAttribute(k,at[k]);return e;}"
    "var svg=s('svg',{viewBox:'0 0 '+W+' '+H,'class':'chart',role:'img',"
    "'aria-label':'Messages sent and records delivered per day'});"
    "var ph=H-B-T,cw=(W-L-8)/n,bw=Math.max(2,cw/2-3);"
    "[0,0.5,1].forEach(function(f){var y=T+ph-f*ph;svg.appendChild(s('line',{x1:L,x2:W-4,"
    "y1:y,y2:y,'class':'grid'}));var t=s('text',{x:L-6,y:y+3,'text-anchor':'end'});"
    "t.textContent=String(Math.round(f*max));svg.appendChild(t);});"
    "a.days.forEach(function(day,i){var x=L+i*cw+2;"
    "[[a.messages_sent[i],'s1','messages sent'],[a.records_delivered[i],'s2',"
    "'records delivered']].forEach(function(p,j){var bh=p[0]/max*ph;"
    "var r=s('rect',{x:x+j*(bw+1),y:T+ph-bh,width:bw,height:Math.max(bh,p[0]?1:0),"
    "'class':p[1]});var tt=s('title',{});tt.textContent=day+': '+p[0]+' '+p[2];"
    "r.appendChild(tt);svg.appendChild(r);});"
    "if((n-1-i)%2===0){var t=s('text',{x:x+bw,y:H-8,'text-anchor':'middle'});"
    "t.textContent=day.slice(5);svg.appendChild(t);}});"
    "return sec('Activity, last 14 days (UTC)',[h('div',{'class':'legend'},"
    "[h('span',null,[h('i',{'class':'key k1'}),'Messages sent']),h('span',null,"
    "[h('i',{'class':'key k2'}),'Records delivered'])]),svg],{'data-chart':'activity'});}"
    "function dlq(d){var rows=d.dead_letters.map(function(x){"
    "return h('tr',{'data-dlq-id':String(x.id)},[cell(String(x.id),'n'),cell(x.sink),"
    "cell(x.office),cell(h('code',null,[x.key])),cell(x.kind),cell(h('div',null,"
    "[badge(x['class'],'bad'),h('div',{'class':'small muted'},[x.detail])])),"
    "cell(num(x.attempts),'n'),cell(ago(x.dead_at_ms,d.now_ms)),"
    "cell(h('span',null,[h('button',{'class':'act retry','data-action':'retry',"
    "'data-id':String(x.id)},['Retry']),h('button',{'class':'act drop','data-action':'drop',"
    "'data-id':String(x.id)},['Drop'])]))]);});"
    "var note=d.dead_letters_total>d.dead_letters.length?h('p',{'class':'small muted'},"
    "['Showing the newest '+d.dead_letters.length+' of '+num(d.dead_letters_total)+"
    "'. odsync dlq list shows them all.']):null;"
    "return sec('Dead letters ('+num(d.dead_letters_total)+')',[rows.length?"
    "table([['Id',1],['Sink'],['Office'],['Key'],['Kind'],['Why'],['Attempts',1],['Dead'],"
    "['']],rows,{id:'dlq'}):empty('No dead letters.'),note]);}"
    "function errors(d){var rows=d.errors.map(function(e){return h('tr',null,["
    "cell(ago(e.at_ms,d.now_ms)),cell(badge(e.source,e.source==='office'?'bad':'warn')),"
    "cell(h('code',null,[e.subject])),cell(e.detail,'small')]);});"
    "return sec('Recent errors',[rows.length?table([['When'],['Source'],['Subject'],"
    "['Detail']],rows):empty('Nothing to report.')]);}"
    "function render(d){last=d;var app=document.getElementById('app');"
    "var frag=document.createDocumentFragment();frag.appendChild(tiles(d));"
    "frag.appendChild(offices(d));"
    "frag.appendChild(h('div',{'class':'cols'},[sinks(d),messages(d)]));"
    "frag.appendChild(h('div',{'class':'gap'}));"
    "frag.appendChild(h('div',{'class':'cols'},[funnel(d),chart(d.activity)]));"
    "frag.appendChild(h('div',{'class':'gap'}));"
    "frag.appendChild(dlq(d));frag.appendChild(errors(d));"
    "while(app.firstChild)app.removeChild(app.firstChild);app.appendChild(frag);"
    "document.getElementById('meta').textContent='odsync '+d.version+' \\u00b7 updated '+"
    "iso(d.now_ms);renders++;document.body.setAttribute('data-renders',String(renders));}"
    "function load(){return fetch('/api/dashboard',{credentials:'same-origin',"
    "headers:{Accept:'application/json'}}).then(function(r){if(r.status===401||"
    "r.status===403){banner('Your session has ended: sign in again.');"
    "window.setTimeout(function(){window.location.replace('/');},1500);return;}"
    "return r.json().then(function(j){if(!r.ok)throw new Error(j.error||('HTTP '+r.status));"
    "render(j);banner('');});}).catch(function(e){banner('Cannot load the dashboard: '+"
    "e.message);});}"
    "document.getElementById('app').addEventListener('click',function(ev){"
    "var b=ev.target.closest('button[data-action]');if(!b)return;b.disabled=true;"
    "act(b.getAttribute('data-id'),b.getAttribute('data-action'));});"
    "document.getElementById('refresh').addEventListener('click',function(){load();});"
    "document.getElementById('signout').addEventListener('click',signout);"
    "window.setInterval(function(){if(!busy&&!document.hidden)load();},15000);load();"
    "})();";

static const char page_head[] = "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
                                "<meta name=\"viewport\" content=\"width=device-width,"
                                "initial-scale=1\"><meta name=\"referrer\" content=\"no-referrer\">"
                                "<title>odsync</title><link rel=\"icon\" href=\"data:,\"><style>";

static const char page_body[] = "</style></head><body data-renders=\"0\"><header><h1>odsync</h1>"
                                "<span class=\"meta\" id=\"meta\">loading</span>"
                                "<button type=\"button\" id=\"refresh\">Refresh</button>"
                                "<button type=\"button\" id=\"signout\">Sign out</button></header>"
                                "<main><div id=\"banner\" role=\"alert\"></div><div id=\"app\">"
                                "<p class=\"empty\">Loading\u2026</p></div></main><script>";

static const char page_tail[] = "</script></body></html>";

/* base64 of the SHA-256 of s into out (at least 45 bytes). */
static int sha256_b64(const char *s, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (len < 45 || EVP_Digest(s, strlen(s), md, &md_len, EVP_sha256(), NULL) != 1)
        return ODSYNC_INTERNAL;
    EVP_EncodeBlock((unsigned char *)out, md, (int)md_len);
    return ODSYNC_OK;
}

/* Build the page and both policies: inline style and script are allowed by their hashes
 * only, nothing loads from elsewhere, nothing may frame the page. */
static int build_page(struct dashboard *d)
{
    struct sbuf page = {0}, csp = {0}, login = {0};
    char css_hash[64], js_hash[64];
    int rc = sha256_b64(page_css, css_hash, sizeof(css_hash));
    if (rc == ODSYNC_OK)
        rc = sha256_b64(page_js, js_hash, sizeof(js_hash));
    if (rc != ODSYNC_OK)
        return rc;
    sbuf_puts(&page, page_head);
    sbuf_puts(&page, page_css);
    sbuf_puts(&page, page_body);
    sbuf_puts(&page, page_js);
    sbuf_puts(&page, page_tail);
    sbuf_printf(&csp,
                "default-src 'none'; style-src 'sha256-%s'; script-src 'sha256-%s';"
                " connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self';"
                " frame-ancestors 'none'",
                css_hash, js_hash);
    sbuf_printf(&login,
                "default-src 'none'; style-src 'sha256-%s'; img-src data:; base-uri 'none';"
                " form-action 'self'; frame-ancestors 'none'",
                css_hash);
    d->page = sbuf_take(&page);
    d->page_csp = sbuf_take(&csp);
    d->login_csp = sbuf_take(&login);
    return d->page && d->page_csp && d->login_csp ? ODSYNC_OK : ODSYNC_NOMEM;
}

/* ---- life cycle ----------------------------------------------------------------------- */

int dashboard_create(const struct config *cfg, const char *store_path, struct dashboard **out,
                     char *err, size_t errlen)
{
    struct dashboard *d = util_calloc(1, sizeof(*d));
    int rc;
    *out = NULL;
    if (d == NULL)
        return ODSYNC_NOMEM;
    d->cfg = cfg;
    pthread_mutex_init(&d->lock, NULL);
    d->store_path = util_strdup(store_path);
    rc = d->store_path ? build_page(d) : ODSYNC_NOMEM;
    if (rc != ODSYNC_OK)
        util_fmt(err, errlen, "dashboard: out of memory");
    if (rc == ODSYNC_OK)
        rc = store_open(store_path, &d->st, err, errlen);
    if (rc != ODSYNC_OK) {
        dashboard_destroy(d);
        return rc;
    }
    *out = d;
    return ODSYNC_OK;
}

void dashboard_destroy(struct dashboard *d)
{
    if (d == NULL)
        return;
    store_close(d->st);
    pthread_mutex_destroy(&d->lock);
    util_free(d->store_path);
    util_free(d->page);
    util_free(d->page_csp);
    util_free(d->login_csp);
    util_free(d);
}

int dashboard_route(const char *path)
{
    if (path == NULL)
        return 0;
    return strcmp(path, "/") == 0 || strcmp(path, "/metrics") == 0 ||
           strcmp(path, "/healthz") == 0 || strcmp(path, "/readyz") == 0 ||
           strcmp(path, "/api/dashboard") == 0 || strcmp(path, "/api/logout") == 0 ||
           strncmp(path, "/api/dlq/", 9) == 0;
}

/* ---- access --------------------------------------------------------------------------- */

enum access {
    ACCESS_DISABLED, /* no admin_token configured: 403 */
    ACCESS_NONE,     /* no credential (or an expired cookie): 401 */
    ACCESS_WRONG,    /* a wrong token: 403 */
    ACCESS_BEARER,   /* the Authorization header */
    ACCESS_COOKIE    /* the session cookie */
};

/* The session cookie's value for an expiry (seconds since the epoch): "v1.EXP.HMAC", the
 * HMAC-SHA256 under the token, in hex. Never the token itself. */
static int session_value(const char *token, int64_t exp, char *out, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0, i;
    char msg[64], hex[2 * EVP_MAX_MD_SIZE + 1];
    util_fmt(msg, sizeof(msg), "odsync-dashboard-session:%lld", (long long)exp);
    if (HMAC(EVP_sha256(), token, (int)strlen(token), (const unsigned char *)msg, strlen(msg), md,
             &md_len) == NULL)
        return ODSYNC_NOMEM;
    for (i = 0; i < md_len; i++)
        util_fmt(hex + 2 * i, 3, "%02x", md[i]);
    hex[2 * md_len] = '\0';
    return util_fmt(out, len, "v1.%lld.%s", (long long)exp, hex);
}

/* 1 when value is a session cookie made with token that has not expired. */
static int session_valid(const char *token, const char *value, int64_t now_s)
{
    char exp_text[24], want[128];
    const char *dot;
    int64_t exp = 0;
    if (strncmp(value, "v1.", 3) != 0)
        return 0;
    dot = strchr(value + 3, '.');
    if (dot == NULL || (size_t)(dot - value - 3) >= sizeof(exp_text))
        return 0;
    util_fmt(exp_text, sizeof(exp_text), "%.*s", (int)(dot - value - 3), value + 3);
    if (util_parse_i64(exp_text, 0, INT64_MAX, &exp) != ODSYNC_OK || exp <= now_s ||
        exp > now_s + SESSION_MAX_AGE_S + 60)
        return 0;
    if (session_value(token, exp, want, sizeof(want)) != ODSYNC_OK)
        return 0;
    return util_secure_equal(want, value);
}

/* The value of cookie name in the request's Cookie header into out; 1 when present. */
static int cookie_get(const struct http_request *req, const char *name, char *out, size_t len)
{
    const char *c = http_request_header(req, "Cookie"), *end;
    size_t n = strlen(name), vlen;
    while (c != NULL && *c != '\0') {
        while (*c == ' ' || *c == ';')
            c++;
        end = strchr(c, ';');
        if (end == NULL)
            end = c + strlen(c);
        if ((size_t)(end - c) > n && strncmp(c, name, n) == 0 && c[n] == '=') {
            vlen = (size_t)(end - c) - n - 1;
            if (vlen >= len)
                return 0;
            memcpy(out, c + n + 1, vlen);
            out[vlen] = '\0';
            return 1;
        }
        c = end;
    }
    return 0;
}

/* Who is asking: the Authorization header decides when present, else the cookie. */
static enum access authorize(const struct dashboard *d, const struct http_request *req)
{
    const char *token = d->cfg->admin_token;
    const char *auth = http_request_header(req, "Authorization");
    char value[160];
    if (token == NULL || token[0] == '\0')
        return ACCESS_DISABLED;
    if (auth != NULL) {
        if (strncasecmp(auth, "Bearer ", 7) != 0)
            return ACCESS_NONE;
        auth += 7;
        while (*auth == ' ')
            auth++;
        return util_secure_equal(token, auth) ? ACCESS_BEARER : ACCESS_WRONG;
    }
    if (cookie_get(req, DASHBOARD_COOKIE, value, sizeof(value)) &&
        session_valid(token, value, util_now_ms() / 1000))
        return ACCESS_COOKIE;
    return ACCESS_NONE;
}

/* Headers every dashboard answer carries. */
static void common_headers(struct http_reply *reply)
{
    http_reply_header(reply, "X-Content-Type-Options", "nosniff");
    http_reply_header(reply, "Referrer-Policy", "no-referrer");
    http_reply_header(reply, "X-Frame-Options", "DENY");
}

/* An API refusal for a, as JSON. */
static void refuse(enum access a, struct http_reply *reply)
{
    if (a == ACCESS_DISABLED) {
        http_reply_error(reply, 403,
                         "the dashboard, its API and /metrics are disabled: set admin_token in "
                         "the configuration");
    } else if (a == ACCESS_WRONG) {
        http_reply_error(reply, 403, "the admin token is not right");
    } else {
        http_reply_error(reply, 401,
                         "the admin token is required: Authorization: Bearer <admin_token>");
        http_reply_header(reply, "WWW-Authenticate", "Bearer realm=\"odsync\"");
    }
}

/* The sign-in page (or the refusal when no token is configured), as HTML. */
static void login_page(const struct dashboard *d, enum access a, struct http_reply *reply)
{
    struct sbuf b = {0};
    const char *msg = a == ACCESS_DISABLED ? "The dashboard is disabled: set admin_token in the "
                                             "odsync configuration (a secret reference such as "
                                             "\"${ODSYNC_ADMIN_TOKEN}\") and restart odsync."
                      : a == ACCESS_WRONG  ? "That token is not right."
                                           : "Sign in with the admin token (admin_token in the "
                                             "odsync configuration).";
    sbuf_puts(&b, page_head);
    sbuf_puts(&b, page_css);
    sbuf_printf(&b,
                "</style></head><body><main class=\"login\"><section><h2>odsync dashboard</h2>"
                "<p id=\"login-message\">%s</p>",
                msg);
    if (a != ACCESS_DISABLED)
        sbuf_puts(&b, "<form method=\"get\" action=\"/\"><label>Admin token"
                      "<input type=\"password\" name=\"token\" autocomplete=\"off\" autofocus>"
                      "</label><button type=\"submit\">Open the dashboard</button></form>");
    sbuf_puts(&b, "</section></main></body></html>");
    reply->status = a == ACCESS_NONE ? 401 : 403;
    reply->body = sbuf_take(&b);
    reply->content_type = HTML_TYPE;
    http_reply_header(reply, "Content-Security-Policy", d->login_csp);
    if (a == ACCESS_NONE)
        http_reply_header(reply, "WWW-Authenticate", "Bearer realm=\"odsync\"");
}

/* GET /: the page; ?token= sets the session cookie and redirects to /. */
static void serve_page(struct dashboard *d, const struct http_request *req,
                       struct http_reply *reply)
{
    const char *given = http_request_arg(req, "token");
    char value[160], cookie[320];
    enum access a;
    if (strcmp(req->method, "GET") != 0 && strcmp(req->method, "HEAD") != 0) {
        http_reply_error(reply, 405, "use GET");
        return;
    }
    if (given != NULL && d->cfg->admin_token != NULL && d->cfg->admin_token[0] != '\0') {
        if (!util_secure_equal(d->cfg->admin_token, given)) {
            login_page(d, ACCESS_WRONG, reply);
            return;
        }
        if (session_value(d->cfg->admin_token, util_now_ms() / 1000 + SESSION_MAX_AGE_S, value,
                          sizeof(value)) != ODSYNC_OK ||
            util_fmt(cookie, sizeof(cookie),
                     DASHBOARD_COOKIE "=%s; Path=/; Max-Age=%d; HttpOnly; SameSite=Strict%s", value,
                     SESSION_MAX_AGE_S,
                     d->cfg->events.tls_cert != NULL ? "; Secure" : "") != ODSYNC_OK) {
            http_reply_error(reply, 500, "cannot make a session");
            return;
        }
        reply->status = 303;
        reply->body = util_strdup("");
        reply->content_type = "text/plain; charset=utf-8";
        http_reply_header(reply, "Set-Cookie", cookie);
        http_reply_header(reply, "Location", "/");
        return;
    }
    a = authorize(d, req);
    if (a != ACCESS_BEARER && a != ACCESS_COOKIE) {
        login_page(d, a, reply);
        return;
    }
    reply->status = 200;
    reply->body = util_strdup(d->page);
    reply->content_type = HTML_TYPE;
    http_reply_header(reply, "Content-Security-Policy", d->page_csp);
}

/* ---- reading the store ---------------------------------------------------------------- */

/* Copy s into out with what could identify a patient replaced by "[redacted]": any word
 * holding '@' (an email address) and any run of digits and phone punctuation with 7 or more
 * digits (a phone number); registered secrets are masked too. Remote error details pass
 * through here before any response. */
static void scrub(const char *s, char *out, size_t len)
{
    static const char redacted[] = "[redacted]";
    static const char bound[] = " \t\r\n\"'<>,;:()[]{}";
    size_t i = 0, o = 0, n = s ? strlen(s) : 0, end, digits, k;
    if (len == 0)
        return;
    while (i < n && o + 1 < len) {
        int at_word = i == 0 || strchr(bound, s[i - 1]) != NULL;
        if (at_word && strchr(bound, s[i]) == NULL) {
            for (end = i; end < n && strchr(bound, s[end]) == NULL; end++)
                ;
            if (memchr(s + i, '@', end - i) != NULL) {
                for (k = 0; redacted[k] && o + 1 < len; k++)
                    out[o++] = redacted[k];
                i = end;
                continue;
            }
        }
        if (isdigit((unsigned char)s[i]) || s[i] == '+') {
            digits = 0;
            for (end = i; end < n && (isdigit((unsigned char)s[end]) || strchr("+-. ()", s[end]));
                 end++)
                digits += isdigit((unsigned char)s[end]) != 0;
            while (end > i && !isdigit((unsigned char)s[end - 1]))
                end--;
            if (digits >= 7) {
                for (k = 0; redacted[k] && o + 1 < len; k++)
                    out[o++] = redacted[k];
                i = end;
                continue;
            }
        }
        out[o++] = s[i++];
    }
    out[o] = '\0';
    log_redact(out, len);
}

/* A statement's text column, or "". */
static const char *col_text(sqlite3_stmt *s, int i)
{
    const unsigned char *t = sqlite3_column_text(s, i);
    return t ? (const char *)t : "";
}

/* Step a prepared, bound statement to its end, calling row(s, arg) per row. */
static int each_row(sqlite3_stmt *s, int (*row)(sqlite3_stmt *s, void *arg), void *arg)
{
    int rc, src = ODSYNC_OK;
    if (s == NULL)
        return ODSYNC_STORE;
    while (src == ODSYNC_OK && (rc = sqlite3_step(s)) == SQLITE_ROW)
        src = row(s, arg);
    if (src == ODSYNC_OK && rc != SQLITE_DONE)
        src = store_status(rc);
    sqlite3_reset(s);
    return src;
}

/* The first column of a one-row query with office bound as ?1 (may be NULL). */
static int one_i64(struct store *st, const char *sql, const char *office, int64_t *out)
{
    sqlite3_stmt *s = store_stmt(st, sql);
    int rc;
    *out = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    if (office != NULL)
        sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW)
        *out = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? ODSYNC_OK : store_status(rc);
}

/* The sinks to show: every configured one, then any other the outbox names (a sink removed
 * from the config whose rows remain). *names: caller frees with names_free. */
static int sink_names(struct dashboard *d, char ***names, size_t *count)
{
    sqlite3_stmt *s = store_stmt(d->st, "SELECT DISTINCT sink FROM outbox ORDER BY sink");
    char **out = NULL, **grown;
    size_t n = 0, cap = d->cfg->n_sinks + 8, i;
    int rc = ODSYNC_OK, step;
    *names = NULL;
    *count = 0;
    if (s == NULL)
        return ODSYNC_STORE;
    out = util_calloc(cap, sizeof(*out));
    for (i = 0; out != NULL && i < d->cfg->n_sinks; i++)
        if ((out[n++] = util_strdup(d->cfg->sinks[i].name)) == NULL)
            rc = ODSYNC_NOMEM;
    if (out == NULL)
        rc = ODSYNC_NOMEM;
    while (rc == ODSYNC_OK && (step = sqlite3_step(s)) == SQLITE_ROW) {
        const char *name = col_text(s, 0);
        if (config_find_sink(d->cfg, name) != NULL)
            continue;
        if (n == cap) {
            grown = util_realloc(out, 2 * cap * sizeof(*out));
            if (grown == NULL) {
                rc = ODSYNC_NOMEM;
                break;
            }
            out = grown;
            cap *= 2;
        }
        if ((out[n++] = util_strdup(name)) == NULL)
            rc = ODSYNC_NOMEM;
    }
    if (rc == ODSYNC_OK && step != SQLITE_DONE)
        rc = store_status(step);
    sqlite3_reset(s);
    if (rc != ODSYNC_OK) {
        for (i = 0; i < n; i++)
            util_free(out[i]);
        util_free(out);
        return rc;
    }
    *names = out;
    *count = n;
    return ODSYNC_OK;
}

static void names_free(char **names, size_t n)
{
    size_t i;
    for (i = 0; names != NULL && i < n; i++)
        util_free(names[i]);
    util_free(names);
}

/* Freshness of an office: last event, last reconcile (the patients' last completed pass),
 * and the lag since the newer of the two (-1 when neither happened). */
struct freshness {
    int64_t last_event, last_reconcile, lag_s;
    char state[32], detail[256];
    int64_t state_since;
};

static int office_freshness(struct store *st, const char *office, int64_t now, struct freshness *f)
{
    struct ingest_checkpoint cp;
    sqlite3_stmt *s;
    char raw[256];
    int64_t fresh;
    int rc;
    memset(f, 0, sizeof(*f));
    rc = events_office_last(st, office, &f->last_event);
    if (rc == ODSYNC_OK)
        rc = ingest_checkpoint_get(st, office, INGEST_PATIENTS, &cp);
    if (rc == ODSYNC_OK)
        rc = ingest_office_state(st, office, f->state, sizeof(f->state), raw, sizeof(raw));
    if (rc != ODSYNC_OK)
        return rc;
    scrub(raw, f->detail, sizeof(f->detail));
    f->last_reconcile = cp.completed_at;
    fresh = f->last_event > f->last_reconcile ? f->last_event : f->last_reconcile;
    f->lag_s = fresh > 0 ? (now - fresh) / 1000 : -1;
    if (f->lag_s < -1)
        f->lag_s = 0;
    s = store_stmt(st, "SELECT since FROM od_office_state WHERE office = ?");
    if (s == NULL)
        return ODSYNC_STORE;
    sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    if (sqlite3_step(s) == SQLITE_ROW)
        f->state_since = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    return ODSYNC_OK;
}

/* Messages of an office per campaign and state (all time). */
struct campaign_counts {
    int64_t by[3][LEDGER_STATE_COUNT]; /* recall, reactivation, review */
};

static int campaign_row(sqlite3_stmt *s, void *arg)
{
    struct campaign_counts *c = arg;
    static const char *const names[] = {"recall", "reactivation", "review"};
    int state = ledger_state_parse(col_text(s, 1));
    size_t i;
    for (i = 0; i < UTIL_ARRAY_LEN(names); i++)
        if (strcmp(col_text(s, 0), names[i]) == 0 && state > LEDGER_NONE)
            c->by[i][state] += sqlite3_column_int64(s, 2);
    return ODSYNC_OK;
}

static int campaign_counts(struct store *st, const char *office, struct campaign_counts *c)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT campaign, state, COUNT(*) FROM messages"
                                     " WHERE office = ? AND campaign <> 'commlog'"
                                     " GROUP BY campaign, state");
    memset(c, 0, sizeof(*c));
    if (s != NULL)
        sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    return each_row(s, campaign_row, c);
}

/* ---- GET /api/dashboard --------------------------------------------------------------- */

/* Add a number; 0 when out of memory. */
static int add_num(cJSON *o, const char *name, int64_t v)
{
    return cJSON_AddNumberToObject(o, name, (double)v) != NULL;
}

static int add_str(cJSON *o, const char *name, const char *v)
{
    return cJSON_AddStringToObject(o, name, v ? v : "") != NULL;
}

static int reason_row(sqlite3_stmt *s, void *arg)
{
    cJSON *r = cJSON_CreateObject();
    char reason[128];
    scrub(col_text(s, 1), reason, sizeof(reason));
    if (r == NULL || !cJSON_AddItemToArray(arg, r) || !add_str(r, "state", col_text(s, 0)) ||
        !add_str(r, "reason", reason) || !add_num(r, "count", sqlite3_column_int64(s, 2)))
        return ODSYNC_NOMEM;
    return ODSYNC_OK;
}

struct funnel {
    int64_t due, scheduled, overdue, none;
};

static int stage_row(sqlite3_stmt *s, void *arg)
{
    struct funnel *f = arg;
    const char *stage = col_text(s, 0);
    int64_t n = sqlite3_column_int64(s, 1);
    if (strcmp(stage, "due_soon") == 0 || strcmp(stage, "due") == 0)
        f->due += n;
    else if (strcmp(stage, "scheduled") == 0)
        f->scheduled += n;
    else if (strncmp(stage, "overdue", 7) == 0)
        f->overdue += n;
    else
        f->none += n;
    return ODSYNC_OK;
}

/* The recall funnel of an office from its contact records and the send ledger:
 *   due        contacts whose recall stage is due_soon or due
 *   reminded   contacts in any recall stage (due, overdue or scheduled) who were sent a
 *              recall reminder
 *   scheduled  contacts whose recall is booked (stage "scheduled")
 *   overdue    contacts in an overdue stage */
static int office_funnel(struct store *st, const char *office, cJSON *o)
{
    sqlite3_stmt *s = store_stmt(st, "SELECT COALESCE(json_extract(body, '$.recall_stage'), ''),"
                                     " COUNT(*) FROM records WHERE office = ? AND kind = 1"
                                     " GROUP BY 1");
    struct funnel f = {0, 0, 0, 0};
    int64_t reminded = 0;
    cJSON *j;
    int rc;
    if (s != NULL)
        sqlite3_bind_text(s, 1, office, -1, SQLITE_STATIC);
    rc = each_row(s, stage_row, &f);
    if (rc == ODSYNC_OK)
        rc = one_i64(st,
                     "SELECT COUNT(*) FROM records r WHERE r.office = ?1 AND r.kind = 1"
                     " AND COALESCE(json_extract(r.body, '$.recall_stage'), '') <> ''"
                     " AND EXISTS (SELECT 1 FROM messages m WHERE m.office = r.office"
                     " AND m.patnum = json_extract(r.body, '$.patnum')"
                     " AND m.campaign = 'recall' AND m.state IN ('sent', 'unknown'))",
                     office, &reminded);
    if (rc != ODSYNC_OK)
        return rc;
    j = cJSON_AddObjectToObject(o, "recall_funnel");
    if (j == NULL || !add_num(j, "due", f.due) || !add_num(j, "reminded", reminded) ||
        !add_num(j, "scheduled", f.scheduled) || !add_num(j, "overdue", f.overdue))
        return ODSYNC_NOMEM;
    return ODSYNC_OK;
}

/* A campaign's counts: sent, pending (queued, held or sending), skipped (skipped or
 * expired), failed. */
static cJSON *campaign_json(cJSON *o, const char *name, const int64_t *by)
{
    cJSON *j = cJSON_AddObjectToObject(o, name);
    if (j == NULL || !add_num(j, "sent", by[LEDGER_SENT] + by[LEDGER_UNKNOWN]) ||
        !add_num(j, "pending", by[LEDGER_QUEUED] + by[LEDGER_HELD] + by[LEDGER_SENDING]) ||
        !add_num(j, "skipped", by[LEDGER_SKIPPED] + by[LEDGER_EXPIRED]) ||
        !add_num(j, "failed", by[LEDGER_FAILED]))
        return NULL;
    return j;
}

/* One office's object. */
static int office_json(struct dashboard *d, const struct config_office *off, int64_t now,
                       cJSON *offices)
{
    struct freshness f;
    struct model_counts mc;
    struct ledger_counts lc;
    struct campaign_counts cc;
    int64_t records = 0, optouts = 0, enrolled = 0;
    int64_t day = policy_local_day_start(off->engage, now, 0);
    cJSON *o = cJSON_CreateObject(), *j;
    sqlite3_stmt *s;
    int rc, st;

    if (o == NULL || !cJSON_AddItemToArray(offices, o))
        return ODSYNC_NOMEM;
    rc = office_freshness(d->st, off->id, now, &f);
    if (rc == ODSYNC_OK)
        rc = model_count(d->st, off->id, &mc);
    if (rc == ODSYNC_OK)
        rc = records_count(d->st, off->id, &records);
    if (rc == ODSYNC_OK)
        rc = ledger_counts(d->st, off->id, day, &lc);
    if (rc == ODSYNC_OK)
        rc = campaign_counts(d->st, off->id, &cc);
    if (rc == ODSYNC_OK)
        rc = one_i64(d->st, "SELECT COUNT(*) FROM consent WHERE office = ? AND state = 'opt_out'",
                     off->id, &optouts);
    if (rc == ODSYNC_OK)
        rc = one_i64(d->st,
                     "SELECT COUNT(*) FROM records WHERE office = ? AND kind = 1"
                     " AND json_extract(body, '$.reactivation') = 1",
                     off->id, &enrolled);
    if (rc != ODSYNC_OK)
        return rc;
    if (!add_str(o, "id", off->id) || !add_str(o, "name", off->name) ||
        !add_str(o, "timezone", off->timezone) || !add_str(o, "tier", off->od_tier) ||
        !add_num(o, "min_interval_ms", off->od_min_interval_ms) ||
        !add_num(o, "last_event_ms", f.last_event) ||
        !add_num(o, "last_reconcile_ms", f.last_reconcile) || !add_num(o, "lag_seconds", f.lag_s) ||
        !add_num(o, "records", records) || !add_num(o, "opt_outs", optouts))
        return ODSYNC_NOMEM;
    j = cJSON_AddObjectToObject(o, "opendental");
    if (j == NULL || !add_str(j, "state", f.state) || !add_str(j, "detail", f.detail) ||
        !add_num(j, "since_ms", f.state_since))
        return ODSYNC_NOMEM;
    j = cJSON_AddObjectToObject(o, "canonical");
    if (j == NULL || !add_num(j, "patients", mc.patients) || !add_num(j, "recalls", mc.recalls) ||
        !add_num(j, "appointments", mc.appointments) || !add_num(j, "procedures", mc.procedures) ||
        !add_num(j, "clinics", mc.clinics))
        return ODSYNC_NOMEM;
    j = cJSON_AddObjectToObject(o, "messages_today");
    for (st = LEDGER_QUEUED; j != NULL && st < LEDGER_STATE_COUNT; st++)
        if (!add_num(j, ledger_state_name(st), lc.by_state[st]))
            return ODSYNC_NOMEM;
    j = cJSON_AddArrayToObject(o, "reasons_today");
    if (j == NULL)
        return ODSYNC_NOMEM;
    s = store_stmt(d->st, "SELECT state, COALESCE(reason, ''), COUNT(*) FROM messages"
                          " WHERE office = ? AND updated_at >= ? AND campaign <> 'commlog'"
                          " AND state IN ('held', 'skipped', 'expired', 'failed', 'unknown')"
                          " GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT 40");
    if (s != NULL) {
        sqlite3_bind_text(s, 1, off->id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(s, 2, day);
    }
    rc = each_row(s, reason_row, j);
    if (rc == ODSYNC_OK)
        rc = office_funnel(d->st, off->id, o);
    if (rc != ODSYNC_OK)
        return rc;
    j = campaign_json(o, "reactivation", cc.by[1]);
    if (j == NULL || !add_num(j, "enrolled", enrolled) ||
        campaign_json(o, "review", cc.by[2]) == NULL ||
        campaign_json(o, "recall", cc.by[0]) == NULL)
        return ODSYNC_NOMEM;
    return ODSYNC_OK;
}

/* One sink's object. */
static int sink_json(struct dashboard *d, const char *name, cJSON *sinks)
{
    const struct config_sink *cs = config_find_sink(d->cfg, name);
    struct outbox_counts oc;
    struct sink_state ss;
    char detail[DETAIL_MAX];
    int paused, rc;
    cJSON *o = cJSON_CreateObject();
    if (o == NULL || !cJSON_AddItemToArray(sinks, o))
        return ODSYNC_NOMEM;
    rc = outbox_count(d->st, name, &oc);
    if (rc == ODSYNC_OK)
        rc = sink_state_get(d->st, name, &ss);
    if (rc != ODSYNC_OK)
        return rc;
    paused = ss.paused_until > util_now_ms();
    scrub(paused ? ss.detail : "", detail, sizeof(detail));
    if (!add_str(o, "name", name) ||
        (cs ? !add_str(o, "plugin", cs->plugin) : cJSON_AddNullToObject(o, "plugin") == NULL) ||
        !add_num(o, "pending", oc.pending) || !add_num(o, "inflight", oc.inflight) ||
        !add_num(o, "done", oc.done) || !add_num(o, "dead", oc.dead) ||
        cJSON_AddBoolToObject(o, "paused", paused) == NULL ||
        !add_str(o, "pause_class", paused ? odsync_status_name(ss.pause_class) : "") ||
        !add_num(o, "paused_until_ms",
                 !paused                                       ? 0
                 : ss.paused_until == SINK_PAUSED_INDEFINITELY ? -1
                                                               : ss.paused_until) ||
        !add_str(o, "pause_detail", detail) ||
        cJSON_AddBoolToObject(o, "configured", cs != NULL) == NULL)
        return ODSYNC_NOMEM;
    return ODSYNC_OK;
}

static const char *kind_name(int kind)
{
    return kind == ODSYNC_KIND_CONTACT   ? "contact"
           : kind == ODSYNC_KIND_TASK    ? "task"
           : kind == ODSYNC_KIND_MESSAGE ? "message"
                                         : "other";
}

/* The newest DLQ_SHOW dead letters and their total. */
static int dead_json(struct dashboard *d, cJSON *root)
{
    struct outbox_dead *rows = NULL;
    size_t n = 0, i, shown = 0;
    char detail[DETAIL_MAX];
    cJSON *arr, *o;
    int rc = outbox_dead_list(d->st, NULL, &rows, &n);
    if (rc != ODSYNC_OK)
        return rc;
    arr = cJSON_AddArrayToObject(root, "dead_letters");
    rc = arr != NULL && add_num(root, "dead_letters_total", (int64_t)n) ? ODSYNC_OK : ODSYNC_NOMEM;
    for (i = n; rc == ODSYNC_OK && i > 0 && shown < DLQ_SHOW; i--, shown++) {
        const struct outbox_dead *r = &rows[i - 1];
        scrub(r->detail, detail, sizeof(detail));
        o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(arr, o) || !add_num(o, "id", r->id) ||
            !add_str(o, "sink", r->sink) || !add_str(o, "office", r->office) ||
            !add_str(o, "key", r->key) || !add_str(o, "kind", kind_name(r->kind)) ||
            !add_str(o, "class", odsync_status_name(r->last_class)) ||
            !add_str(o, "detail", detail) || !add_num(o, "attempts", r->attempts) ||
            !add_num(o, "version", r->version) || !add_num(o, "dead_at_ms", r->dead_at))
            rc = ODSYNC_NOMEM;
    }
    outbox_dead_free(rows, n);
    return rc;
}

/* One recent error, before sorting. */
struct error_item {
    int64_t at;
    const char *source; /* static */
    char subject[160];
    char detail[DETAIL_MAX];
};

struct error_list {
    struct error_item *items;
    size_t n, cap;
};

static struct error_item *error_add(struct error_list *l)
{
    struct error_item *grown;
    if (l->n == l->cap) {
        grown = util_realloc(l->items, (l->cap ? l->cap * 2 : 16) * sizeof(*grown));
        if (grown == NULL)
            return NULL;
        l->items = grown;
        l->cap = l->cap ? l->cap * 2 : 16;
    }
    memset(&l->items[l->n], 0, sizeof(l->items[0]));
    return &l->items[l->n++];
}

static int failed_row(sqlite3_stmt *s, void *arg)
{
    struct error_item *e = error_add(arg);
    char reason[128];
    if (e == NULL)
        return ODSYNC_NOMEM;
    scrub(col_text(s, 5), reason, sizeof(reason));
    e->at = sqlite3_column_int64(s, 6);
    e->source = "message";
    util_fmt(e->subject, sizeof(e->subject), "%s", col_text(s, 1));
    util_fmt(e->detail, sizeof(e->detail), "%s %s %s (office %s): %s", col_text(s, 2),
             col_text(s, 3), col_text(s, 4), col_text(s, 0), reason[0] ? reason : "no reason");
    return ODSYNC_OK;
}

static int error_cmp(const void *a, const void *b)
{
    const struct error_item *x = a, *y = b;
    return x->at < y->at ? 1 : x->at > y->at ? -1 : 0;
}

/* Recent errors, newest first: paused sinks, offices whose Open Dental is not ok, failed or
 * unknown messages. */
static int errors_json(struct dashboard *d, char **sinks, size_t n_sinks, cJSON *root)
{
    struct error_list l = {NULL, 0, 0};
    struct error_item *e;
    struct sink_state ss;
    struct freshness f;
    cJSON *arr, *o;
    size_t i;
    int64_t at;
    int rc = ODSYNC_OK;

    for (i = 0; rc == ODSYNC_OK && i < n_sinks; i++) {
        rc = sink_state_get(d->st, sinks[i], &ss);
        if (rc != ODSYNC_OK || ss.paused_until <= util_now_ms())
            continue;
        rc = one_i64(d->st, "SELECT updated_at FROM sink_state WHERE sink = ?", sinks[i], &at);
        e = rc == ODSYNC_OK ? error_add(&l) : NULL;
        if (rc == ODSYNC_OK && e == NULL)
            rc = ODSYNC_NOMEM;
        if (e == NULL)
            continue;
        e->at = at;
        e->source = "sink";
        util_fmt(e->subject, sizeof(e->subject), "%s", sinks[i]);
        scrub(ss.detail, e->detail, sizeof(e->detail));
        if (ss.paused_until == SINK_PAUSED_INDEFINITELY)
            util_fmt(e->detail + strlen(e->detail), sizeof(e->detail) - strlen(e->detail),
                     " (paused, %s, until resumed: odsync sinks resume %s)",
                     odsync_status_name(ss.pause_class), sinks[i]);
        else
            util_fmt(e->detail + strlen(e->detail), sizeof(e->detail) - strlen(e->detail),
                     " (paused, %s, for %lld min more)", odsync_status_name(ss.pause_class),
                     (long long)((ss.paused_until - util_now_ms() + 59999) / 60000));
    }
    for (i = 0; rc == ODSYNC_OK && i < d->cfg->n_offices; i++) {
        rc = office_freshness(d->st, d->cfg->offices[i].id, util_now_ms(), &f);
        if (rc != ODSYNC_OK || strcmp(f.state, "ok") == 0 || strcmp(f.state, "unknown") == 0)
            continue;
        if ((e = error_add(&l)) == NULL) {
            rc = ODSYNC_NOMEM;
            break;
        }
        e->at = f.state_since;
        e->source = "office";
        util_fmt(e->subject, sizeof(e->subject), "%s", d->cfg->offices[i].id);
        util_fmt(e->detail, sizeof(e->detail), "Open Dental %s: %s", f.state, f.detail);
    }
    if (rc == ODSYNC_OK)
        rc = each_row(store_stmt(d->st, "SELECT office, key, campaign, channel, state,"
                                        " COALESCE(reason, ''), updated_at FROM messages"
                                        " WHERE state IN ('failed', 'unknown')"
                                        " ORDER BY updated_at DESC LIMIT 20"),
                      failed_row, &l);
    if (rc == ODSYNC_OK && l.n > 0)
        qsort(l.items, l.n, sizeof(l.items[0]), error_cmp);
    arr = rc == ODSYNC_OK ? cJSON_AddArrayToObject(root, "errors") : NULL;
    if (rc == ODSYNC_OK && arr == NULL)
        rc = ODSYNC_NOMEM;
    for (i = 0; rc == ODSYNC_OK && i < l.n; i++) {
        o = cJSON_CreateObject();
        if (o == NULL || !cJSON_AddItemToArray(arr, o) || !add_num(o, "at_ms", l.items[i].at) ||
            !add_str(o, "source", l.items[i].source) ||
            !add_str(o, "subject", l.items[i].subject) || !add_str(o, "detail", l.items[i].detail))
            rc = ODSYNC_NOMEM;
    }
    util_free(l.items);
    return rc;
}

struct day_counts {
    int64_t first_day; /* UTC day number of the first bucket */
    int64_t v[ACTIVITY_DAYS];
};

static int day_row(sqlite3_stmt *s, void *arg)
{
    struct day_counts *c = arg;
    int64_t i = sqlite3_column_int64(s, 0) - c->first_day;
    if (i >= 0 && i < ACTIVITY_DAYS)
        c->v[i] += sqlite3_column_int64(s, 1);
    return ODSYNC_OK;
}

/* Per UTC day over the last ACTIVITY_DAYS days: messages sent (by their send time) and
 * records delivered (outbox rows whose latest version was delivered that day). */
static int activity_json(struct dashboard *d, int64_t now, cJSON *root)
{
    struct day_counts sent, done;
    sqlite3_stmt *s;
    cJSON *a, *days, *ms, *rd;
    char label[16];
    int64_t first = now / DAY_MS - (ACTIVITY_DAYS - 1), i;
    time_t t;
    struct tm tm;
    int rc;

    memset(&sent, 0, sizeof(sent));
    memset(&done, 0, sizeof(done));
    sent.first_day = done.first_day = first;
    s = store_stmt(d->st, "SELECT sent_at / 86400000, COUNT(*) FROM messages WHERE state = 'sent'"
                          " AND campaign <> 'commlog' AND sent_at >= ? GROUP BY 1");
    if (s != NULL)
        sqlite3_bind_int64(s, 1, first * DAY_MS);
    rc = each_row(s, day_row, &sent);
    s = rc == ODSYNC_OK ? store_stmt(d->st, "SELECT updated_at / 86400000, COUNT(*) FROM outbox"
                                            " WHERE state = 'done' AND updated_at >= ?"
                                            " GROUP BY 1")
                        : NULL;
    if (s != NULL)
        sqlite3_bind_int64(s, 1, first * DAY_MS);
    if (rc == ODSYNC_OK)
        rc = each_row(s, day_row, &done);
    if (rc != ODSYNC_OK)
        return rc;
    a = cJSON_AddObjectToObject(root, "activity");
    days = a ? cJSON_AddArrayToObject(a, "days") : NULL;
    ms = a ? cJSON_AddArrayToObject(a, "messages_sent") : NULL;
    rd = a ? cJSON_AddArrayToObject(a, "records_delivered") : NULL;
    if (days == NULL || ms == NULL || rd == NULL)
        return ODSYNC_NOMEM;
    for (i = 0; i < ACTIVITY_DAYS; i++) {
        t = (time_t)((first + i) * 86400);
        gmtime_r(&t, &tm);
        strftime(label, sizeof(label), "%Y-%m-%d", &tm);
        if (!cJSON_AddItemToArray(days, cJSON_CreateString(label)) ||
            !cJSON_AddItemToArray(ms, cJSON_CreateNumber((double)sent.v[i])) ||
            !cJSON_AddItemToArray(rd, cJSON_CreateNumber((double)done.v[i])))
            return ODSYNC_NOMEM;
    }
    return ODSYNC_OK;
}

static int kind_row(sqlite3_stmt *s, void *arg)
{
    int64_t *by = arg;
    int kind = sqlite3_column_int(s, 0);
    by[kind >= 1 && kind <= 3 ? kind : 0] += sqlite3_column_int64(s, 1);
    return ODSYNC_OK;
}

/* The whole snapshot, in one read transaction so its numbers agree with each other. */
static int snapshot(struct dashboard *d, cJSON *root)
{
    int64_t now = util_now_ms(), by_kind[4] = {0, 0, 0, 0}, inbox = 0;
    char **sinks = NULL;
    size_t n_sinks = 0, i;
    cJSON *arr, *rec;
    int rc = store_exec(d->st, "BEGIN");
    if (rc != ODSYNC_OK)
        return rc;
    rc = each_row(store_stmt(d->st, "SELECT kind, COUNT(*) FROM records GROUP BY kind"), kind_row,
                  by_kind);
    if (rc == ODSYNC_OK)
        rc = events_pending(d->st, &inbox);
    if (rc == ODSYNC_OK)
        rc = sink_names(d, &sinks, &n_sinks);
    if (rc == ODSYNC_OK) {
        rec = cJSON_AddObjectToObject(root, "records");
        if (!add_str(root, "version", ODSYNC_VERSION) || !add_num(root, "now_ms", now) ||
            !add_num(root, "inbox_pending", inbox) || rec == NULL ||
            !add_num(rec, "total", by_kind[0] + by_kind[1] + by_kind[2] + by_kind[3]) ||
            !add_num(rec, "contacts", by_kind[ODSYNC_KIND_CONTACT]) ||
            !add_num(rec, "tasks", by_kind[ODSYNC_KIND_TASK]) ||
            !add_num(rec, "messages", by_kind[ODSYNC_KIND_MESSAGE]))
            rc = ODSYNC_NOMEM;
    }
    arr = rc == ODSYNC_OK ? cJSON_AddArrayToObject(root, "offices") : NULL;
    if (rc == ODSYNC_OK && arr == NULL)
        rc = ODSYNC_NOMEM;
    for (i = 0; rc == ODSYNC_OK && i < d->cfg->n_offices; i++)
        rc = office_json(d, &d->cfg->offices[i], now, arr);
    arr = rc == ODSYNC_OK ? cJSON_AddArrayToObject(root, "sinks") : NULL;
    if (rc == ODSYNC_OK && arr == NULL)
        rc = ODSYNC_NOMEM;
    for (i = 0; rc == ODSYNC_OK && i < n_sinks; i++)
        rc = sink_json(d, sinks[i], arr);
    if (rc == ODSYNC_OK)
        rc = dead_json(d, root);
    if (rc == ODSYNC_OK)
        rc = errors_json(d, sinks, n_sinks, root);
    if (rc == ODSYNC_OK)
        rc = activity_json(d, now, root);
    names_free(sinks, n_sinks);
    store_exec(d->st, "COMMIT");
    return rc;
}

static void serve_json(struct dashboard *d, struct http_reply *reply)
{
    cJSON *root = cJSON_CreateObject();
    char *printed = NULL;
    int rc;
    pthread_mutex_lock(&d->lock);
    rc = root ? snapshot(d, root) : ODSYNC_NOMEM;
    pthread_mutex_unlock(&d->lock);
    if (rc == ODSYNC_OK)
        printed = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (printed == NULL) {
        http_reply_error(reply, 503, "the store cannot answer now (%s)", odsync_status_name(rc));
        return;
    }
    reply->status = 200;
    reply->body = util_strdup(printed);
    cJSON_free(printed);
    if (reply->body == NULL)
        http_reply_error(reply, 503, "out of memory");
}

/* ---- GET /metrics --------------------------------------------------------------------- */

/* A family's HELP and TYPE lines. */
static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value, escaped as the text format wants (\\, \" and \n). */
static void label_value(struct sbuf *b, const char *v)
{
    for (; v != NULL && *v != '\0'; v++) {
        if (*v == '\\')
            sbuf_puts(b, "\\\\");
        else if (*v == '"')
            sbuf_puts(b, "\\\"");
        else if (*v == '\n')
            sbuf_puts(b, "\\n");
        else
            sbuf_append(b, v, 1);
    }
}

/* A sample: name{l1="v1",...} value. n_labels pairs of (name, value) follow value. */
static void sample(struct sbuf *b, const char *name, int64_t value, int n_labels, ...)
{
    va_list ap;
    int i;
    sbuf_puts(b, name);
    va_start(ap, n_labels);
    for (i = 0; i < n_labels; i++) {
        const char *ln = va_arg(ap, const char *), *lv = va_arg(ap, const char *);
        sbuf_printf(b, "%s%s=\"", i == 0 ? "{" : ",", ln);
        label_value(b, lv);
        sbuf_puts(b, "\"");
    }
    va_end(ap);
    sbuf_printf(b, "%s %lld\n", n_labels > 0 ? "}" : "", (long long)value);
}

struct metrics_rows {
    struct sbuf *b;
    const char *name;
    int what; /* which query the rows come from */
};

enum { M_RECORDS, M_RESULTS, M_MESSAGES, M_OPTOUTS };

static int metrics_row(sqlite3_stmt *s, void *arg)
{
    struct metrics_rows *m = arg;
    char cls[16];
    switch (m->what) {
    case M_RECORDS:
        sample(m->b, m->name, sqlite3_column_int64(s, 2), 2, "office", col_text(s, 0), "kind",
               kind_name(sqlite3_column_int(s, 1)));
        break;
    case M_RESULTS:
        util_fmt(cls, sizeof(cls), "%s", odsync_status_name(sqlite3_column_int(s, 1)));
        sample(m->b, m->name, sqlite3_column_int64(s, 2), 2, "sink", col_text(s, 0), "class", cls);
        break;
    case M_MESSAGES:
        sample(m->b, m->name, sqlite3_column_int64(s, 4), 4, "office", col_text(s, 0), "campaign",
               col_text(s, 1), "channel", col_text(s, 2), "state", col_text(s, 3));
        break;
    default:
        sample(m->b, m->name, sqlite3_column_int64(s, 3), 3, "office", col_text(s, 0), "channel",
               col_text(s, 1), "source", col_text(s, 2));
        break;
    }
    return ODSYNC_OK;
}

/* A family whose samples come from a grouped query. */
static int family_query(struct dashboard *d, struct sbuf *b, const char *name, const char *help,
                        int what, const char *sql)
{
    struct metrics_rows m = {b, name, what};
    family(b, name, "gauge", help);
    return each_row(store_stmt(d->st, sql), metrics_row, &m);
}

static int metrics_sinks(struct dashboard *d, struct sbuf *b, char **sinks, size_t n)
{
    static const char *const states[] = {"pending", "inflight", "done", "dead"};
    struct outbox_counts oc;
    struct sink_state ss;
    size_t i, k;
    int rc = ODSYNC_OK, paused;
    int64_t v[4];

    family(b, "odsync_outbox_rows", "gauge", "Outbox rows per sink and state.");
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        rc = outbox_count(d->st, sinks[i], &oc);
        v[0] = oc.pending;
        v[1] = oc.inflight;
        v[2] = oc.done;
        v[3] = oc.dead;
        for (k = 0; rc == ODSYNC_OK && k < UTIL_ARRAY_LEN(states); k++)
            sample(b, "odsync_outbox_rows", v[k], 2, "sink", sinks[i], "state", states[k]);
    }
    family(b, "odsync_dead_letters", "gauge", "Dead letters per sink (odsync dlq list).");
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        rc = outbox_count(d->st, sinks[i], &oc);
        if (rc == ODSYNC_OK)
            sample(b, "odsync_dead_letters", oc.dead, 1, "sink", sinks[i]);
    }
    family(b, "odsync_sink_paused", "gauge",
           "1 while the sink is paused (class RATE_LIMITED or AUTH), else 0.");
    for (i = 0; rc == ODSYNC_OK && i < n; i++) {
        rc = sink_state_get(d->st, sinks[i], &ss);
        if (rc != ODSYNC_OK)
            break;
        paused = ss.paused_until > util_now_ms();
        sample(b, "odsync_sink_paused", paused, 2, "sink", sinks[i], "class",
               paused ? odsync_status_name(ss.pause_class) : "none");
    }
    if (rc == ODSYNC_OK)
        rc = family_query(d, b, "odsync_remote_results",
                          "Outbox rows per sink by the result class of their last delivery"
                          " attempt (OK, RETRY, RATE_LIMITED, PERMANENT, AUTH, ...).",
                          M_RESULTS,
                          "SELECT sink, last_class, COUNT(*) FROM outbox"
                          " WHERE last_class IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2");
    return rc;
}

static int metrics_offices(struct dashboard *d, struct sbuf *b)
{
    static const char *const states[] = {"ok", "offline", "version", "auth", "error", "unknown"};
    struct freshness *f = util_calloc(d->cfg->n_offices + 1, sizeof(*f));
    struct model_counts mc;
    int64_t now = util_now_ms();
    size_t i, k;
    int rc = f ? ODSYNC_OK : ODSYNC_NOMEM;

    for (i = 0; rc == ODSYNC_OK && i < d->cfg->n_offices; i++)
        rc = office_freshness(d->st, d->cfg->offices[i].id, now, &f[i]);
    if (rc != ODSYNC_OK)
        goto cleanup;
    family(b, "odsync_opendental_state", "gauge",
           "1 for the office's current Open Dental state (ok, offline: the eConnector is not"
           " answering, version, auth, error, unknown: no pass yet), 0 for the others.");
    for (i = 0; i < d->cfg->n_offices; i++)
        for (k = 0; k < UTIL_ARRAY_LEN(states); k++)
            sample(b, "odsync_opendental_state", strcmp(f[i].state, states[k]) == 0, 2, "office",
                   d->cfg->offices[i].id, "state", states[k]);
    family(b, "odsync_office_lag_seconds", "gauge",
           "Seconds since the newer of the office's last API event and last reconciling pass"
           " (absent before either).");
    for (i = 0; i < d->cfg->n_offices; i++)
        if (f[i].lag_s >= 0)
            sample(b, "odsync_office_lag_seconds", f[i].lag_s, 1, "office", d->cfg->offices[i].id);
    family(b, "odsync_office_last_event_timestamp_seconds", "gauge",
           "When the office's last API event arrived (0: never).");
    for (i = 0; i < d->cfg->n_offices; i++)
        sample(b, "odsync_office_last_event_timestamp_seconds", f[i].last_event / 1000, 1, "office",
               d->cfg->offices[i].id);
    family(b, "odsync_office_last_reconcile_timestamp_seconds", "gauge",
           "When the office's last complete reconciling pass ended (0: never).");
    for (i = 0; i < d->cfg->n_offices; i++)
        sample(b, "odsync_office_last_reconcile_timestamp_seconds", f[i].last_reconcile / 1000, 1,
               "office", d->cfg->offices[i].id);
    family(b, "odsync_canonical_rows", "gauge", "Rows of the canonical model per office.");
    for (i = 0; rc == ODSYNC_OK && i < d->cfg->n_offices; i++) {
        const char *id = d->cfg->offices[i].id;
        rc = model_count(d->st, id, &mc);
        sample(b, "odsync_canonical_rows", mc.patients, 2, "office", id, "entity", "patients");
        sample(b, "odsync_canonical_rows", mc.recalls, 2, "office", id, "entity", "recalls");
        sample(b, "odsync_canonical_rows", mc.appointments, 2, "office", id, "entity",
               "appointments");
        sample(b, "odsync_canonical_rows", mc.procedures, 2, "office", id, "entity", "procedures");
        sample(b, "odsync_canonical_rows", mc.clinics, 2, "office", id, "entity", "clinics");
    }
cleanup:
    util_free(f);
    return rc;
}

static int metrics_text(struct dashboard *d, struct sbuf *b)
{
    char **sinks = NULL;
    size_t n_sinks = 0;
    int64_t inbox = 0;
    int rc = store_exec(d->st, "BEGIN");
    if (rc != ODSYNC_OK)
        return rc;
    family(b, "odsync_build_info", "gauge", "The running odsync's version (always 1).");
    sample(b, "odsync_build_info", 1, 1, "version", ODSYNC_VERSION);
    family(b, "odsync_store_write_waiters", "gauge",
           "Writers of the daemon waiting for their turn at the database.");
    sample(b, "odsync_store_write_waiters", store_write_waiters(), 0);
    rc = family_query(d, b, "odsync_records", "Canonical records per office and kind.", M_RECORDS,
                      "SELECT office, kind, COUNT(*) FROM records GROUP BY 1, 2 ORDER BY 1, 2");
    if (rc == ODSYNC_OK)
        rc = sink_names(d, &sinks, &n_sinks);
    if (rc == ODSYNC_OK)
        rc = metrics_sinks(d, b, sinks, n_sinks);
    if (rc == ODSYNC_OK)
        rc = metrics_offices(d, b);
    if (rc == ODSYNC_OK)
        rc = family_query(d, b, "odsync_messages",
                          "Messages and commlogs in the send ledger per office, campaign, channel"
                          " and state (sent, skipped, failed, ...): sends by outcome.",
                          M_MESSAGES,
                          "SELECT office, campaign, channel, state, COUNT(*) FROM messages"
                          " GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4");
    if (rc == ODSYNC_OK)
        rc = family_query(d, b, "odsync_opt_outs",
                          "Opt-outs in the consent ledger per office, channel and source.",
                          M_OPTOUTS,
                          "SELECT office, channel, source, COUNT(*) FROM consent"
                          " WHERE state = 'opt_out' GROUP BY 1, 2, 3 ORDER BY 1, 2, 3");
    if (rc == ODSYNC_OK)
        rc = events_pending(d->st, &inbox);
    if (rc == ODSYNC_OK) {
        family(b, "odsync_events_inbox_batches", "gauge",
               "API Events batches received and not yet applied.");
        sample(b, "odsync_events_inbox_batches", inbox, 0);
    }
    names_free(sinks, n_sinks);
    store_exec(d->st, "COMMIT");
    return rc;
}

static void serve_metrics(struct dashboard *d, struct http_reply *reply)
{
    struct sbuf b = {0};
    int rc;
    pthread_mutex_lock(&d->lock);
    rc = metrics_text(d, &b);
    pthread_mutex_unlock(&d->lock);
    if (rc != ODSYNC_OK) {
        sbuf_free(&b);
        http_reply_error(reply, 503, "the store cannot answer now (%s)", odsync_status_name(rc));
        return;
    }
    reply->body = sbuf_take(&b);
    if (reply->body == NULL) {
        http_reply_error(reply, 503, "out of memory");
        return;
    }
    reply->status = 200;
    reply->content_type = METRICS_TYPE;
}

/* ---- probes and actions --------------------------------------------------------------- */

/* 1 when the store at path opens (without being created) and answers with the schema this
 * build expects. A fresh connection, so a file gone or locked shows. */
static int store_ready(const char *path)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *s = NULL;
    int ok = 0;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        goto cleanup;
    sqlite3_busy_timeout(db, 2000);
    if (sqlite3_prepare_v2(db, "SELECT MAX(version) FROM schema_migrations", -1, &s, NULL) !=
        SQLITE_OK)
        goto cleanup;
    ok = sqlite3_step(s) == SQLITE_ROW && sqlite3_column_int(s, 0) == store_latest_version();
cleanup:
    sqlite3_finalize(s);
    sqlite3_close(db);
    return ok;
}

static void text_reply(struct http_reply *reply, int status, const char *text)
{
    reply->status = status;
    reply->body = util_strdup(text);
    reply->content_type = "text/plain; charset=utf-8";
}

/* POST /api/dlq/{id}/retry|drop. */
static void serve_dlq(struct dashboard *d, const char *rest, struct http_reply *reply)
{
    const char *slash = strchr(rest, '/');
    char id_text[24], body[96];
    int64_t id = 0, requeued = 0;
    int dropped = 0, rc, retry;
    if (slash == NULL || (size_t)(slash - rest) >= sizeof(id_text)) {
        http_reply_error(reply, 404, "expected /api/dlq/{id}/retry or /api/dlq/{id}/drop");
        return;
    }
    util_fmt(id_text, sizeof(id_text), "%.*s", (int)(slash - rest), rest);
    retry = strcmp(slash + 1, "retry") == 0;
    if (util_parse_i64(id_text, 1, INT64_MAX, &id) != ODSYNC_OK ||
        (!retry && strcmp(slash + 1, "drop") != 0)) {
        http_reply_error(reply, 404, "expected /api/dlq/{id}/retry or /api/dlq/{id}/drop");
        return;
    }
    pthread_mutex_lock(&d->lock);
    rc = retry ? outbox_dead_retry(d->st, id, NULL, &requeued)
               : outbox_dead_drop(d->st, id, &dropped);
    pthread_mutex_unlock(&d->lock);
    if (rc != ODSYNC_OK) {
        http_reply_error(reply, 503, "the store cannot answer now (%s)", odsync_status_name(rc));
        return;
    }
    if (requeued == 0 && !dropped) {
        http_reply_error(reply, 404, "no dead letter %lld", (long long)id);
        return;
    }
    log_info("dashboard", "dead letter %lld %s", (long long)id, retry ? "requeued" : "dropped");
    util_fmt(body, sizeof(body), "{\"id\":%lld,\"%s\":true}", (long long)id,
             retry ? "requeued" : "dropped");
    reply->status = 200;
    reply->body = util_strdup(body);
}

/* The routes behind the token, after the token was checked. */
static void serve_api(struct dashboard *d, const struct http_request *req, enum access a,
                      struct http_reply *reply)
{
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    int post = strcmp(req->method, "POST") == 0;
    const char *action = http_request_header(req, CSRF_HEADER);
    char cookie[160];

    if (strcmp(req->path, "/api/dashboard") == 0 || strcmp(req->path, "/metrics") == 0) {
        if (!get)
            http_reply_error(reply, 405, "use GET");
        else if (req->path[1] == 'm')
            serve_metrics(d, reply);
        else
            serve_json(d, reply);
        return;
    }
    if (!post) {
        http_reply_error(reply, 405, "use POST");
        return;
    }
    if (a == ACCESS_COOKIE && (action == NULL || strcmp(action, "1") != 0)) {
        http_reply_error(reply, 403,
                         "an action authenticated by the session cookie must carry the header "
                         "%s: 1",
                         CSRF_HEADER);
        return;
    }
    if (strcmp(req->path, "/api/logout") == 0) {
        util_fmt(cookie, sizeof(cookie),
                 DASHBOARD_COOKIE "=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict");
        http_reply_header(reply, "Set-Cookie", cookie);
        reply->status = 200;
        reply->body = util_strdup("{\"signed_out\":true}");
        return;
    }
    serve_dlq(d, req->path + strlen("/api/dlq/"), reply);
}

void dashboard_http_handler(void *arg, const struct http_request *req, struct http_reply *reply)
{
    struct dashboard *d = arg;
    int get = strcmp(req->method, "GET") == 0 || strcmp(req->method, "HEAD") == 0;
    enum access a;

    if (strcmp(req->path, "/healthz") == 0) {
        if (get)
            text_reply(reply, 200, "ok\n");
        else
            http_reply_error(reply, 405, "use GET");
        return;
    }
    if (strcmp(req->path, "/readyz") == 0) {
        if (!get)
            http_reply_error(reply, 405, "use GET");
        else if (store_ready(d->store_path))
            text_reply(reply, 200, "ready\n");
        else
            text_reply(reply, 503, "not ready: the store does not open or answer\n");
        return;
    }
    if (!dashboard_route(req->path)) {
        http_reply_error(reply, 404, "no such route");
        return;
    }
    common_headers(reply);
    if (strcmp(req->path, "/") == 0) {
        serve_page(d, req, reply);
        return;
    }
    a = authorize(d, req);
    if (a != ACCESS_BEARER && a != ACCESS_COOKIE) {
        refuse(a, reply);
        return;
    }
    serve_api(d, req, a, reply);
}
