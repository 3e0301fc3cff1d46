function openTarget(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;
var el=document.getElementById(id);if(!el)return;var d=el.closest('details');while(d){d.open=true;
d=d.parentElement?d.parentElement.closest('details'):null;}el.scrollIntoView();}
window.addEventListener('hashchange',openTarget);document.addEventListener('DOMContentLoaded',openTarget);
var closedForPrint=[];
window.addEventListener('beforeprint',function(){document.querySelectorAll('details:not([open])').forEach(
function(d){d.open=true;closedForPrint.push(d);});});
window.addEventListener('afterprint',function(){closedForPrint.forEach(function(d){d.open=false;});closedForPrint=[];});
function focusableScrollers(){document.querySelectorAll('.wide, pre').forEach(function(e){
if(e.scrollWidth>e.clientWidth)e.tabIndex=0;else e.removeAttribute('tabindex');});}
['DOMContentLoaded','resize'].forEach(function(t){window.addEventListener(t,focusableScrollers);});
document.addEventListener('toggle',focusableScrollers,true);
